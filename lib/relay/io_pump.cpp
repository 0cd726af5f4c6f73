// The two-way byte pump of a bound link (see io_pump.hpp for the rules it keeps).
#include "relay/io_pump.hpp"

#include <malloc.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace tn::relay {

namespace {
constexpr std::size_t kPlainChunk = 65536;
// Sealing: one read of up to kSealRead plaintext bytes becomes records of up to kSealRecord (less on
// loopback, see record_size), sent in one write (bench/relay/README.md: 64 KiB records beat 16 KiB;
// 256 KiB reads cost ~15 % less CPU per GiB than 64 KiB ones, 512 KiB no less than 256 KiB; the
// buffers exist only while bytes flow).
constexpr std::size_t kSealRecord = 65536;
constexpr std::size_t kSealRead = 262144;
constexpr std::size_t kSealOut = kSealRead + (kSealRead / kSealRecord + 1) * kRecordOverhead;
// Opening: room for a partial record plus whole ones of the largest size a peer may send: four,
// so the plaintext goes to the local socket in writes as large as the sealing side's reads.
constexpr std::size_t kOpenIn = 5 * (kRecordMax + kRecordOverhead);
// Chunks moved in a row in one direction before the pump yields to the event loop.
constexpr int kTurns = 4;

// Plaintext per sealed record for bulk data on this link: records that end on a segment boundary.
// On loopback (MSS 65483 once the window has grown) a 64 KiB record is 65556 bytes, so every
// 4-record write was four full segments plus a 292-byte one: a fifth segment through both link hops
// and the route for ~0.1 % of the bytes (A/B in one run: 8 % fewer TCP segments, 7 % less relay CPU
// per GiB, 12 % more throughput). With a small MSS (1448 over a real network) a record spans dozens
// of segments and the tail does not matter: full 64 KiB records.
std::size_t record_size(Stream* link, std::size_t overhead) {
    int mss = 0;
    socklen_t l = sizeof mss;
    if (::getsockopt(link->socket().native_handle(), IPPROTO_TCP, TCP_MAXSEG, &mss, &l) != 0 || mss < 16384)
        return kSealRecord;
    auto per = (kSealRecord + overhead) / static_cast<std::size_t>(mss);  // whole segments per record
    return per ? per * static_cast<std::size_t>(mss) - overhead : kSealRecord;
}

void reset_on_close(Stream* s) {
    // SO_LINGER 0: close() sends RST, so the local peer sees an abort, never a clean end.
    linger l{1, 0};
    ::setsockopt(s->socket().native_handle(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
}
}  // namespace

Pump::Pump(StreamPtr a, StreamPtr b, Done done) : a_(std::move(a)), b_(std::move(b)), done_(std::move(done)) {
    dir_[0].from = a_.get();
    dir_[0].to = b_.get();
    dir_[1].from = b_.get();
    dir_[1].to = a_.get();
}

std::shared_ptr<Pump> Pump::start(StreamPtr a, StreamPtr b, Done done, std::unique_ptr<LinkSeal> seal_a,
                                  std::unique_ptr<LinkSeal> seal_b, std::function<bool()> keep_sealed, int held) {
    std::shared_ptr<Pump> p(new Pump(std::move(a), std::move(b), std::move(done)));
    p->keep_sealed_ = std::move(keep_sealed);
    p->seal_a_ = std::move(seal_a);
    p->seal_b_ = std::move(seal_b);
    if (p->seal_a_) {
        p->dir_[0].open = &p->seal_a_->rx;
        p->dir_[1].seal = &p->seal_a_->tx;
    }
    if (p->seal_b_) {
        p->dir_[0].seal = &p->seal_b_->tx;
        p->dir_[1].open = &p->seal_b_->rx;
    }
    error_code ec;
    // Callers set TCP_NODELAY where they make each socket; non-blocking once (asio skips its own ioctl).
    for (auto* s : {p->a_.get(), p->b_.get()})
        if (!s->socket().non_blocking()) s->socket().non_blocking(true, ec);
    for (int d : {0, 1})
        if (d != held) p->read(d);
    return p;
}

void keep_freed_buffers() {
    mallopt(M_MMAP_THRESHOLD, 1 << 20);  // a fixed threshold: 128 KiB buffers come from the heap
    mallopt(M_TRIM_THRESHOLD, 8 << 20);
}

bool Pump::trim_if_idle() {
    for (const auto& x : dir_)
        if (x.in || x.iovn) return false;  // bytes in hand, or a write under way
    for (auto* s : {seal_a_.get(), seal_b_.get()})
        if (s) {
            s->tx.trim();
            s->rx.trim();
        }
    return true;
}

std::size_t IdlePumps::trim() {
    std::size_t idle = 0;
    std::erase_if(pumps_, [&idle](const std::weak_ptr<Pump>& w) {
        auto p = w.lock();
        if (p && p->trim_if_idle()) ++idle;
        return !p;
    });
    return idle;
}

void Pump::resume(int d) {
    if (!finished_) read(d);
}

void Pump::abort(const std::string& why, bool reset_local) { finish(LinkEnd::aborted(why), reset_local); }

void Pump::read(int d) {
    Dir& x = dir_[d];
    x.turns = 0;
    if (x.open && !x.from->unread.empty()) {
        // The frame reads before us took these from the socket with the frames (Stream::unread).
        if (!x.in) x.in.reset(new std::uint8_t[kOpenIn]);
        auto n = x.from->take_unread(x.in.get() + x.have, kOpenIn - x.have);
        // As if they emptied the socket: the wait after the write costs what a read finding nothing
        // would, and wakes at once if more came.
        x.drained = true;
        return process(d, n);
    }
    if (x.open) {
        // Wake-ups per byte: with part of a record in, epoll (and the kernel's wake-up of this
        // process) fires only once the rest of it is in, not for each segment of it. Never more than
        // that one record's remaining bytes, so the record's last byte always wakes us; with no
        // partial record, any byte (small records come whole, and this costs no setsockopt per
        // connection). A non-blocking read still returns whatever is there, and a FIN or an error
        // wakes us regardless.
        std::size_t want = 1;
        if (x.have >= kRecordHeader) want = x.open->parse(std::span(x.in.get(), kRecordHeader)).size() - x.have;
        set_lowat(x, static_cast<int>(want));
    }
    auto self = shared_from_this();
    dir_[d].from->socket().async_wait(tcp::socket::wait_read, [this, self, d](error_code ec) {
        if (finished_) return;
        if (ec) return finish(LinkEnd::io(ec.message()));
        try_read(d);
    });
}

void Pump::set_lowat(Dir& x, int v) {
    if (x.lowat == v) return;
    // Best effort: without it we are only woken more often.
    if (::setsockopt(x.from->socket().native_handle(), SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v) == 0) x.lowat = v;
}

void Pump::try_read(int d) {
    Dir& x = dir_[d];
    // Sealing reads go straight into the record slots of `in` (header room, rec plaintext bytes,
    // tag room, next slot...), sealed in place: one buffer, not a plaintext and a sealed copy.
    std::size_t room = x.open ? kOpenIn : x.seal ? kSealOut : kPlainChunk;
    if (!x.in) x.in.reset(new std::uint8_t[room]);
    ssize_t r;
    std::size_t cap;
    if (x.seal) {
        // kSealRead / kSealRecord records per read; their size follows the link's MSS while bulk
        // data flows (the last read filled its room).
        auto ovh = x.seal->overhead();
        if (x.bytes && !x.drained) x.rec = record_size(x.to, ovh);
        std::array<iovec, kSealRead / kSealRecord> v{};
        for (std::size_t i = 0; i < v.size(); ++i) v[i] = {x.in.get() + i * (x.rec + ovh) + kRecordHeader, x.rec};
        cap = v.size() * x.rec;
        do r = ::readv(x.from->socket().native_handle(), v.data(), static_cast<int>(v.size()));
        while (r < 0 && errno == EINTR);
    } else {
        cap = room - x.have;
        do r = ::recv(x.from->socket().native_handle(), x.in.get() + x.have, cap, 0);
        while (r < 0 && errno == EINTR);
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        // Drained: an idle direction gives its buffer back (a partial record keeps it).
        if (x.have == 0) x.in.reset();
        return read(d);
    }
    if (r == 0) {
        if (x.open) return finish(LinkEnd::truncated("the link closed without its EOF record"), true);
        return eof(d);
    }
    if (r < 0) return finish(LinkEnd::io(std::strerror(errno)), x.open != nullptr);
    auto n = static_cast<std::size_t>(r);
    // A read that did not fill the room emptied the socket: after the write, wait for readiness
    // instead of a read that would only say EAGAIN (one syscall less per chunk of small traffic).
    x.drained = n < cap;
    process(d, n);
}

void Pump::process(int d, std::size_t n) {
    Dir& x = dir_[d];
    x.iovn = x.iovi = 0;
    if (x.open) {
        // Records are opened in place; the plaintext pieces go out in one sendmsg(2). Short pieces
        // are moved down to join the previous one (small records would otherwise need an iovec
        // each); the partial record at the end moves to the front once the write is done.
        x.have += n;
        std::size_t pos = 0, outn = 0;
        bool got_eof = false;
        try {
            while (x.have - pos >= kRecordHeader) {
                auto h = x.open->parse(std::span(x.in.get() + pos, kRecordHeader));
                if (x.have - pos < h.size()) break;
                auto* plain = x.in.get() + pos + kRecordHeader;
                auto m = x.open->open(std::span(x.in.get() + pos, h.size()), plain);
                pos += h.size();
                if (m) {
                    outn += m;
                    if (x.iovn && (m < 4096 || x.iovn == x.iov.size())) {
                        auto& last = x.iov[x.iovn - 1];
                        std::memmove(static_cast<std::uint8_t*>(last.iov_base) + last.iov_len, plain, m);
                        last.iov_len += m;
                    } else {
                        x.iov[x.iovn++] = {plain, m};
                    }
                }
                if (h.eof) {
                    got_eof = true;
                    peer_kept_ = h.keep;
                    break;
                }
            }
            if (got_eof && pos != x.have) {
                // The peer's stream ended; on a link we keep, what follows is the route's next request
                // (it parks the link once both EOF records passed and may use it at once): the frame
                // reader gets it. On a link we did not keep, nothing may follow.
                if (!kept_) throw WireError("bytes after the EOF record");
                x.from->unread.assign(x.in.get() + pos, x.in.get() + x.have);
                x.have = pos;
            }
        } catch (const WireError& e) {
            return finish(LinkEnd::protocol(e.what()), true);
        }
        x.consumed = pos;
        x.bytes += outn;
        if (outn == 0) {
            compact(x);
            return got_eof ? eof(d) : try_read(d);
        }
        return write(d, got_eof);
    }
    std::size_t outn = n;
    if (x.seal) {
        outn = 0;
        for (std::size_t p = 0; p < n;) {
            auto m = std::min(x.rec, n - p);
            outn += x.seal->seal(std::span(x.in.get() + outn + kRecordHeader, m), x.in.get() + outn);
            p += m;
        }
    }
    x.bytes += n;
    x.iov[0] = {x.in.get(), outn};
    x.iovn = 1;
    write(d, false);
}

void Pump::compact(Dir& x) {
    if (!x.consumed) return;
    std::memmove(x.in.get(), x.in.get() + x.consumed, x.have - x.consumed);
    x.have -= x.consumed;
    x.consumed = 0;
}

void Pump::write(int d, bool then_eof) {
    // The whole chunk in one sendmsg(2) where the socket takes it: asio::async_write would cut it
    // into 64 KiB sends, and on loopback (MSS 65483) each 64 KiB send is a full segment plus a
    // 53-byte one, twice the segments (and receiver wake-ups) per byte. Only a full socket buffer waits.
    Dir& x = dir_[d];
    int fd = x.to->socket().native_handle();
    while (x.iovi < x.iovn) {
        msghdr mh{};
        mh.msg_iov = x.iov.data() + x.iovi;
        mh.msg_iovlen = x.iovn - x.iovi;
        ssize_t m = ::sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (m > 0) {
            auto left = static_cast<std::size_t>(m);
            while (x.iovi < x.iovn && left >= x.iov[x.iovi].iov_len) left -= x.iov[x.iovi++].iov_len;
            if (left) {
                x.iov[x.iovi].iov_base = static_cast<std::uint8_t*>(x.iov[x.iovi].iov_base) + left;
                x.iov[x.iovi].iov_len -= left;
            }
            continue;
        }
        if (m < 0 && errno == EINTR) continue;
        if (m < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            auto self = shared_from_this();
            return x.to->socket().async_wait(tcp::socket::wait_write, [this, self, d, then_eof](error_code ec) {
                if (finished_) return;
                if (ec) return finish(LinkEnd::io(ec.message()), true);
                write(d, then_eof);
            });
        }
        return finish(LinkEnd::io(m == 0 ? "send wrote nothing" : std::strerror(errno)), true);
    }
    x.iovn = x.iovi = 0;
    if (x.open) compact(x);
    if (then_eof) return eof(d);
    if (x.drained) {
        if (!x.have) x.in.reset();
        return read(d);
    }
    // Still more to read: go on at once, but after a few chunks let the other connections of this
    // event loop have their turn (a fast sender and a fast receiver would otherwise hold it forever).
    if (++x.turns < kTurns) return try_read(d);
    x.turns = 0;
    asio::post(x.from->socket().get_executor(), [this, self = shared_from_this(), d]() {
        if (!finished_) try_read(d);
    });
}

void Pump::eof(int d) {
    auto self = shared_from_this();
    Dir& x = dir_[d];
    x.in.reset();
    auto after = [this, self, d](error_code ec) {
        if (finished_) return;
        if (ec) return finish(LinkEnd::io(ec.message()));
        // Plain TCP half-close. A sealed link's end is its EOF record alone: the connection stays up
        // for reuse, or closes (FIN) once both directions ended.
        if (!dir_[d].seal) dir_[d].to->socket().shutdown(tcp::socket::shutdown_send, ec);
        dir_[d].done = true;
        if (dir_[0].done && dir_[1].done) finish(LinkEnd{});
    };
    if (!x.seal) return after({});
    kept_ = keep_sealed_ && keep_sealed_();
    auto n = x.seal->seal_eof(x.eof_rec.data(), kept_);
    // Nearly always taken at once: then no trip through the event loop.
    ssize_t m;
    do m = ::send(x.to->socket().native_handle(), x.eof_rec.data(), n, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (m < 0 && errno == EINTR);
    if (m == static_cast<ssize_t>(n)) return after({});
    if (m < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return after(error_code(errno, boost::system::system_category()));
    std::size_t sent = m > 0 ? static_cast<std::size_t>(m) : 0;
    asio::async_write(x.to->socket(), asio::buffer(x.eof_rec.data() + sent, n - sent), [after](error_code ec, std::size_t) { after(ec); });
}

void Pump::finish(const LinkEnd& end, bool reset_local) {
    if (finished_) return;
    finished_ = true;
    if (reset_local) {
        if (!seal_a_) reset_on_close(a_.get());
        if (!seal_b_) reset_on_close(b_.get());
    }
    bool keep = kept_ && end.clean();
    // A kept link goes back to frame reads, which must wake for any byte again.
    for (auto& x : dir_)
        if (keep && x.open) set_lowat(x, 1);
    if (!(keep && seal_a_)) a_->close();
    if (!(keep && seal_b_)) b_->close();
    for (auto& x : dir_) x.in.reset();
    if (done_) {
        auto d = std::move(done_);
        d(end, dir_[0].bytes, dir_[1].bytes);
    }
}

}  // namespace tn::relay
