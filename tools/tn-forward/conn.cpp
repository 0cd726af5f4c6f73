// One forwarded connection's turn (see conn.hpp): the socket <-> channel byte pump.
#include "conn.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace tn::forward {

namespace {
// Large reads mean fewer turns per byte (each turn costs polls inside libssh); 256 KiB used about a
// fifth less CPU per byte than 64 KiB through -L here.
constexpr std::size_t io_chunk = 256 * 1024;
}  // namespace

void start_channel(Conn& c, ssh::ForwardSession& session) {
    c.chan = session.new_channel();
    c.phase = Conn::Phase::opening_channel;
    if (!c.chan) c.dead = true;
}

short wanted_events(const Conn& c) {
    switch (c.phase) {
    case Conn::Phase::connecting_local: return POLLOUT;
    case Conn::Phase::socks: return POLLIN;
    case Conn::Phase::opening_channel: return 0;
    case Conn::Phase::open: break;
    }
    short ev = 0;
    if (!c.sock_eof && c.to_chan.empty() && c.chan.window() > 0) ev |= POLLIN;
    if (!c.to_sock.empty()) ev |= POLLOUT;
    return ev;
}

namespace {

// SOCKS5 negotiation on a -D connection: until the target is known, then the channel opens.
void socks_turn(Conn& c, short revents, char* buf, ssh::ForwardSession& session, const log::Logger& log) {
    if (!(revents & (POLLIN | POLLHUP))) return;
    ssize_t n = ::read(c.sock.get(), buf, io_chunk);
    if (n <= 0) {
        c.dead = n == 0 || errno != EAGAIN;
        return;
    }
    std::string reply = c.socks->feed(std::string_view(buf, static_cast<std::size_t>(n)));
    if (!reply.empty() && ::write(c.sock.get(), reply.data(), reply.size()) < 0) c.dead = true;
    if (c.socks->state() == Socks5::State::failed) {
        log.debug("SOCKS5: ", c.socks->error());
        c.dead = true;
    } else if (c.socks->state() == Socks5::State::done) {
        c.host = c.socks->host();
        c.port = c.socks->port();
        c.to_chan = c.socks->take_leftover();
        start_channel(c, session);
    }
}

// The phases before bytes flow. True when the connection is (now) open; `ssh_ready` is set when it
// just opened, since the server may have sent data before we could take it.
bool setup_turn(Conn& c, short revents, bool& ssh_ready, char* buf, ssh::ForwardSession& session,
                const log::Logger& log) {
    switch (c.phase) {
    case Conn::Phase::socks: socks_turn(c, revents, buf, session, log); return false;
    case Conn::Phase::connecting_local: {
        if (!(revents & (POLLOUT | POLLHUP))) return false;
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(c.sock.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            log.warn("cannot connect to ", c.host, ":", c.port, ": ", std::strerror(err));
            c.dead = true;
            return false;
        }
        break;
    }
    case Conn::Phase::opening_channel: {
        auto rc = c.chan.open(c.host, c.port);
        if (rc == ssh::Step::again) return false;
        bool ok = rc == ssh::Step::done;
        if (c.socks) {
            std::string r = Socks5::reply(ok);
            if (::write(c.sock.get(), r.data(), r.size()) < 0) ok = false;
            c.socks.reset();
        }
        if (!ok) {
            log.debug("channel to ", c.host, ":", c.port, " refused: ", session.error());
            c.dead = true;
            return false;
        }
        break;
    }
    case Conn::Phase::open: return true;
    }
    c.phase = Conn::Phase::open;
    ssh_ready = true;
    return true;
}

// socket -> channel, only as far as the channel window allows: that is the backpressure.
void sock_to_chan(Conn& c, short revents, char* buf) {
    ssh::ForwardChannel& ch = c.chan;
    if (!c.to_chan.empty()) {
        int w = ch.write(c.to_chan.data(), c.to_chan.size());
        if (w < 0) {
            c.dead = true;
            return;
        }
        c.to_chan.erase(0, static_cast<std::size_t>(w));
    }
    // Several reads per turn while the window allows: one poll round per 64 KiB costs throughput.
    for (int i = 0; i < 8 && c.to_chan.empty() && !c.sock_eof && (revents & (POLLIN | POLLHUP)); ++i) {
        uint32_t win = ch.window();
        if (win == 0) break;
        ssize_t n = ::read(c.sock.get(), buf, std::min<std::size_t>(io_chunk, win));
        if (n > 0) {
            int w = ch.write(buf, static_cast<std::size_t>(n));
            if (w < 0) {
                c.dead = true;
                return;
            }
            if (w < n) c.to_chan.assign(buf + w, static_cast<std::size_t>(n - w));
            if (static_cast<std::size_t>(n) < io_chunk) break;  // drained for now
        } else if (n == 0) {
            c.sock_eof = true;
            ch.send_eof();  // half-close: the other side may still answer
        } else {
            if (errno != EAGAIN && errno != EINTR) c.dead = true;
            break;
        }
    }
}

// channel -> socket, reading the channel only when the socket took everything before. True when it
// stopped at its read quota with data left.
bool chan_to_sock(Conn& c, short revents, bool ssh_ready, char* buf) {
    if (!c.to_sock.empty() && (revents & POLLOUT)) {
        ssize_t n = ::write(c.sock.get(), c.to_sock.data(), c.to_sock.size());
        if (n < 0 && errno != EAGAIN) {
            c.dead = true;
            return false;
        }
        if (n > 0) c.to_sock.erase(0, static_cast<std::size_t>(n));
        if (c.to_sock.empty()) ssh_ready = true;  // room again: the channel may hold more
    }
    if (!c.to_sock.empty() || c.chan_eof || !ssh_ready) return false;
    for (int i = 0; c.to_sock.empty(); ++i) {
        if (i == 16) return true;  // fairness: the other connections get their turn first
        int n = c.chan.read(buf, io_chunk);
        if (n > 0) {
            ssize_t w = ::write(c.sock.get(), buf, static_cast<std::size_t>(n));
            if (w < 0 && errno != EAGAIN) {
                c.dead = true;
                return false;
            }
            if (w < 0) w = 0;
            if (w < n) c.to_sock.assign(buf + w, static_cast<std::size_t>(n - w));
            continue;
        }
        if (n == ssh::ForwardChannel::read_eof) c.chan_eof = true;
        else if (n < 0) c.dead = true;
        break;
    }
    return false;
}

}  // namespace

bool pump(Conn& c, short revents, bool ssh_ready, ssh::ForwardSession& session, const log::Logger& log) {
    static_assert(io_chunk <= 1024 * 1024, "the turn's buffer lives on the stack");
    char buf[io_chunk];
    if (revents & (POLLERR | POLLNVAL)) {
        c.dead = true;
        return false;
    }
    if (!setup_turn(c, revents, ssh_ready, buf, session, log)) return false;
    sock_to_chan(c, revents, buf);
    if (c.dead) return false;
    bool again = chan_to_sock(c, revents, ssh_ready, buf);
    if (c.dead || again) return again;
    if (c.chan_eof && c.to_sock.empty() && !c.shut_wr) {
        ::shutdown(c.sock.get(), SHUT_WR);
        c.shut_wr = true;
    }
    bool drained = c.to_sock.empty() && c.to_chan.empty();
    if ((c.sock_eof && c.chan_eof && drained) || (c.chan.closed() && c.to_sock.empty())) c.dead = true;
    return false;
}

}  // namespace tn::forward
