// The route's record-aware relay for vnet<->vnet link pairs (see io_record_relay.hpp).
#include "relay/io_record_relay.hpp"

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "relay/seal.hpp"

namespace tn::relay {

namespace {
// A burst moves at most this much before the relay lets other connections run.
constexpr std::size_t kTurn = 1 << 20;
}  // namespace

RecordRelay::RecordRelay(StreamPtr a, StreamPtr b, PipePool& pipes, std::size_t tag, Done done)
    : a_(std::move(a)), b_(std::move(b)), pipes_(pipes), tag_(tag), done_(std::move(done)) {
    dir_[0].from = a_.get();
    dir_[0].to = b_.get();
    dir_[1].from = b_.get();
    dir_[1].to = a_.get();
}

std::shared_ptr<RecordRelay> RecordRelay::start(StreamPtr a, StreamPtr b, PipePool& pipes, std::size_t tag, Bytes prefix_to_a,
                                                Bytes prefix_to_b, Done done) {
    std::shared_ptr<RecordRelay> r(new RecordRelay(std::move(a), std::move(b), pipes, tag, std::move(done)));
    r->dir_[1].prefix = std::move(prefix_to_a);
    r->dir_[0].prefix = std::move(prefix_to_b);
    error_code ec;
    for (auto* s : {r->a_.get(), r->b_.get()})
        if (!s->socket().non_blocking()) s->socket().non_blocking(true, ec);
    // Bytes may be waiting already (the using vnet sends its first records right behind LINK_OPEN).
    r->pull(0);
    r->pull(1);
    return r;
}

void RecordRelay::abort(const std::string& why) { finish(LinkEnd::aborted(why)); }

void RecordRelay::wait_read(int d) {
    // On the splice path the wait is a peek: Asio tries it at once and otherwise queues it on the
    // registration it has (no epoll_ctl re-arm, which async_wait costs every time), and at a record
    // boundary it brings the header along. A header split across segments waits for readiness
    // instead (a peek would complete again at once with the same bytes), and so does the greedy
    // path, which holds no buffer while it waits.
    Dir& x = dir_[d];
    auto self = shared_from_this();
    if (!x.splicing() || (x.rest == 0 && x.peeked > 0 && x.peeked < kRecordHeader)) {
        x.peeked = 0;
        return x.from->socket().async_wait(tcp::socket::wait_read, [this, self, d](error_code ec) {
            if (finished_) return;
            if (ec) return finish(LinkEnd::io(ec.message()));
            pull(d);
        });
    }
    std::size_t want = x.rest == 0 ? kRecordHeader : 1;
    x.from->socket().async_receive(asio::buffer(x.peek.data(), want), tcp::socket::message_peek,
                                   [this, self, d](error_code ec, std::size_t n) {
        if (finished_) return;
        if (ec == asio::error::eof) return finish(LinkEnd::truncated("a link closed without its EOF record"));
        if (ec) return finish(LinkEnd::io(ec.message()));
        dir_[d].peeked = n;
        pull(d);
    });
}

std::size_t RecordRelay::scan(Dir& x, const std::uint8_t* p, std::size_t n) {
    std::size_t i = 0;
    while (i < n) {
        if (x.rest == 0) {
            if (x.last) break;  // the EOF record passed: the rest is not this stream's
            auto take = std::min(kRecordHeader - x.hdrn, n - i);
            std::memcpy(x.hdr.data() + x.hdrn, p + i, take);
            x.hdrn += take;
            i += take;
            if (x.hdrn < kRecordHeader) break;
            x.hdrn = 0;
            auto head = RecordOpener::head(x.hdr, tag_);
            x.rest = head.size() - kRecordHeader;
            x.payload += head.plain;
            x.last = head.eof;
            x.keep = head.keep;
            x.bulk = head.size() >= kSpliceMin;
            continue;
        }
        auto take = std::min(x.rest, n - i);
        i += take;
        x.rest -= take;
    }
    return i;
}

bool RecordRelay::pull_greedy(int d, std::size_t& moved) {
    Dir& x = dir_[d];
    // Copied out before anything waits, so one buffer serves every relay of this thread.
    static thread_local std::array<std::uint8_t, kGreedy> buf;
    // Bytes read ahead count as what the socket had: the wait after them costs what a read that
    // finds nothing would, and wakes at once if more came.
    bool drained = true;
    std::size_t n = x.from->take_unread(buf.data(), buf.size());
    if (n == 0) {
        ssize_t r;
        do r = ::recv(x.from->socket().native_handle(), buf.data(), buf.size(), MSG_DONTWAIT);
        while (r < 0 && errno == EINTR);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            // Nothing from this side yet. The request and LINK_OK go to the serving vnet now;
            // LINK_OPENED waits for the serving side's first bytes (one wake-up of the using vnet).
            if (d == 0 && !x.prefix.empty()) {
                push(d);
                if (finished_ || !x.prefix.empty()) return false;  // it waits to write, and pulls after
            }
            wait_read(d);
            return false;
        }
        if (r < 0) {
            finish(LinkEnd::io(std::strerror(errno)));
            return false;
        }
        if (r == 0) {
            finish(LinkEnd::truncated(x.rest == 0 && x.hdrn == 0 ? "a link closed without its EOF record" : "a link closed inside a record"));
            return false;
        }
        n = static_cast<std::size_t>(r);
        drained = n < buf.size();
    }
    std::size_t mine;
    try {
        mine = scan(x, buf.data(), n);
    } catch (const WireError& e) {
        finish(LinkEnd::protocol(e.what()));
        return false;
    }
    // Behind the EOF record: the using vnet's next LINK_OPEN (the frame reader's), ahead of any
    // bytes still unread.
    auto end = buf.begin() + static_cast<std::ptrdiff_t>(mine);
    if (mine < n) x.from->unread.insert(x.from->unread.begin(), end, buf.begin() + static_cast<std::ptrdiff_t>(n));
    x.held.insert(x.held.end(), buf.begin(), end);
    moved += mine;
    push(d);
    if (finished_ || x.done || !x.flushed()) return false;  // ended, or waits to write (and pulls after)
    if (drained) {
        wait_read(d);
        return false;
    }
    return true;
}

void RecordRelay::pull(int d) {
    Dir& x = dir_[d];
    int fd = x.from->socket().native_handle();
    std::size_t moved = 0;
    while (!finished_ && !x.done) {
        if (!x.splicing()) {
            if (!pull_greedy(d, moved)) return;
        } else {
            if (x.rest == 0) {
                // A record starts here: peek its header (type and length, in clear) and move it whole.
                // The wait that woke us may have peeked it already.
                std::uint8_t* h = x.peek.data();
                auto n = static_cast<ssize_t>(x.peeked);
                if (n < static_cast<ssize_t>(kRecordHeader)) n = ::recv(fd, h, kRecordHeader, MSG_PEEK | MSG_DONTWAIT);
                x.peeked = 0;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return wait_read(d);
                if (n < 0) return finish(LinkEnd::io(std::strerror(errno)));
                if (n == 0) return finish(LinkEnd::truncated("a link closed without its EOF record"));
                if (static_cast<std::size_t>(n) < kRecordHeader) {
                    x.peeked = static_cast<std::size_t>(n);  // the rest is on its way
                    return wait_read(d);
                }
                try {
                    auto head = RecordOpener::head(std::span(h, kRecordHeader), tag_);
                    x.rest = head.size();
                    x.payload += head.plain;
                    x.last = head.eof;
                    x.keep = head.keep;
                    x.bulk = head.size() >= kSpliceMin;
                } catch (const WireError& e) {
                    return finish(LinkEnd::protocol(e.what()));
                }
            }
            x.peeked = 0;
            if (!x.pipe) x.pipe = pipes_.take();
            if (!x.pipe) return finish(LinkEnd::io("out of file descriptors for a pipe"));
            ssize_t n = ::splice(fd, nullptr, x.pipe.w.get(), nullptr, x.rest, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                pipes_.give(std::move(x.pipe));
                x.pipe = {};
                return wait_read(d);
            }
            if (n < 0) return finish(LinkEnd::io(std::strerror(errno)));
            if (n == 0) return finish(LinkEnd::truncated("a link closed inside a record"));
            x.rest -= static_cast<std::size_t>(n);
            x.in_pipe = static_cast<std::size_t>(n);
            moved += static_cast<std::size_t>(n);
            push(d);
            // push() returned: either it waits for the receiver (and pulls again afterwards), or
            // everything went out and the loop goes on.
            if (finished_ || !x.flushed() || x.done) return;
        }
        if (moved >= kTurn) {
            return asio::post(a_->socket().get_executor(), [this, self = shared_from_this(), d]() {
                if (!finished_) pull(d);
            });
        }
    }
}

void RecordRelay::push(int d) {
    Dir& x = dir_[d];
    int to = x.to->socket().native_handle();
    auto wait_write = [&]() {
        x.waited_write = true;
        x.to->socket().async_wait(tcp::socket::wait_write, [this, self = shared_from_this(), d](error_code ec) {
            if (finished_) return;
            if (ec) return finish(LinkEnd::io(ec.message()));
            push(d);
            if (!finished_ && dir_[d].flushed() && !dir_[d].done) pull(d);
        });
    };
    while (!x.prefix.empty() || !x.held.empty()) {
        // The route's frames and the bytes read ahead in one write; MSG_MORE when a spliced record
        // follows, so they join it in one segment.
        std::array<iovec, 2> v{};
        int k = 0;
        if (!x.prefix.empty()) v[k++] = {x.prefix.data(), x.prefix.size()};
        if (!x.held.empty()) v[k++] = {x.held.data(), x.held.size()};
        msghdr mh{};
        mh.msg_iov = v.data();
        mh.msg_iovlen = static_cast<std::size_t>(k);
        ssize_t m = ::sendmsg(to, &mh, MSG_NOSIGNAL | MSG_DONTWAIT | (x.in_pipe ? MSG_MORE : 0));
        if (m < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return wait_write();
        if (m < 0 && errno == EINTR) continue;
        if (m <= 0) return finish(LinkEnd::io(m == 0 ? "send wrote nothing" : std::strerror(errno)));
        auto sent = static_cast<std::size_t>(m);
        auto fp = std::min(sent, x.prefix.size());
        x.prefix.erase(x.prefix.begin(), x.prefix.begin() + static_cast<std::ptrdiff_t>(fp));
        sent -= fp;
        x.held.erase(x.held.begin(), x.held.begin() + static_cast<std::ptrdiff_t>(sent));
        x.bytes += sent;
    }
    // An idle relay holds no buffer (thousands of them wait between two requests).
    if (x.prefix.capacity()) Bytes().swap(x.prefix);
    if (x.held.capacity()) Bytes().swap(x.held);
    while (x.in_pipe > 0) {
        ssize_t m = ::splice(x.pipe.r.get(), nullptr, to, nullptr, x.in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (m < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return wait_write();  // backpressure: no pull meanwhile
        if (m <= 0) return finish(LinkEnd::io(m == 0 ? "splice wrote nothing" : std::strerror(errno)));
        x.in_pipe -= static_cast<std::size_t>(m);
        x.bytes += static_cast<std::uint64_t>(m);
    }
    if (x.pipe) {
        pipes_.give(std::move(x.pipe));
        x.pipe = {};
    }
    if (x.rest == 0 && x.last && !x.done) {
        // This direction's EOF record went out: nothing more is read from that link here. When both
        // have, every byte of the stream passed and both links are idle.
        x.done = true;
        if (dir_[0].done && dir_[1].done && !finished_) {
            finished_ = true;
            // Back to its pool idle: a link that waited to write here would otherwise wake the
            // route at every ACK from now on.
            for (int side : {0, 1}) {
                if (!waited_to_write(side)) continue;
                auto& sock = (side == 0 ? a_ : b_)->socket();
                error_code ec;
                auto ep = sock.local_endpoint(ec);
                if (!ec) read_interest_only(sock, ep.protocol());
            }
            if (done_) {
                auto cb = std::move(done_);
                cb(LinkEnd{}, *this, dir_[0].keep, dir_[1].keep);
            }
        }
    }
}

void RecordRelay::finish(const LinkEnd& end) {
    if (finished_) return;
    finished_ = true;
    a_->close();
    b_->close();
    for (auto& x : dir_) x.pipe = {};  // a pipe with bytes in it is not pooled: the next user would get them
    if (done_) {
        auto cb = std::move(done_);
        cb(end, *this, false, false);
    }
}

}  // namespace tn::relay
