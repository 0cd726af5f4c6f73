// Stream: one relay connection over Asio, plain TCP (links) or TLS (control) behind one interface, plus the exact-size
// frame reads and writes every relay connection does (hello, header, capped payload).
#pragma once

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <variant>

#include "relay/io_tls_conn.hpp"
#include "relay/wire.hpp"

namespace tn::relay {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

class Stream {
public:
    explicit Stream(tcp::socket s) : v_(std::move(s)) {}
    Stream(tcp::socket s, asio::ssl::context& ctx) : v_(std::in_place_type<TlsConn>, std::move(s), ctx.native_handle()) {}

    bool tls() const { return std::holds_alternative<TlsConn>(v_); }
    tcp::socket& socket() {
        return tls() ? std::get<TlsConn>(v_).socket() : std::get<tcp::socket>(v_);
    }
    TlsConn& tls_conn() { return std::get<TlsConn>(v_); }
    SSL* ssl() { return std::get<TlsConn>(v_).ssl(); }

    template <class Buf, class H> void async_read_some(const Buf& b, H&& h) {
        if (auto* t = std::get_if<TlsConn>(&v_)) return t->async_read_some(asio::mutable_buffer(b), std::forward<H>(h));
        std::get<tcp::socket>(v_).async_read_some(b, std::forward<H>(h));
    }
    // Exactly b's size, like asio::async_read. On plain TCP it reads greedily: whatever else the socket
    // holds (up to kGreedyRead more) lands in `unread`, so the frames and records that came in one
    // segment cost one recv and one wake-up, not one per frame, header and payload.
    template <class Buf, class H> void async_read(const Buf& b, H&& h) {
        if (auto* t = std::get_if<TlsConn>(&v_)) return t->async_read(asio::mutable_buffer(b), std::forward<H>(h));
        asio::mutable_buffer mb(b);
        auto n = take_unread(static_cast<std::uint8_t*>(mb.data()), mb.size());
        if (n == mb.size())
            return asio::post(socket().get_executor(), [h = std::forward<H>(h), n]() mutable { h(error_code{}, n); });
        read_greedy(mb, n, std::function<void(error_code, std::size_t)>(std::forward<H>(h)));
    }
    template <class Buf, class H> void async_write(const Buf& b, H&& h) {
        if (auto* t = std::get_if<TlsConn>(&v_)) return t->async_write(asio::const_buffer(b), std::forward<H>(h));
        asio::async_write(std::get<tcp::socket>(v_), b, std::forward<H>(h));
    }
    void close() {
        error_code ec;
        socket().close(ec);
    }

    // The route's CHALLENGE nonce on this connection (both ends keep it): a link's setup frames prove
    // the session over it, and LINK_OK's key box is sealed under a key derived from it.
    Nonce challenge{};
    // How many proxied connections this link carried before (the route's reuse count).
    std::uint32_t carried = 0;
    // Bytes read from the socket ahead of their reader: the greedy frame reads leave here what came
    // behind a frame (a using vnet's first records behind LINK_OPEN, LINK_OK and records behind a
    // request), and on a reused link the pump that read the route's next request right behind the
    // peer's EOF record leaves the request here. Whatever reads a plain Stream after a frame read
    // (frame reads, Pump, RecordRelay) takes these first.
    Bytes unread;
    // Moves up to `max` bytes of `unread` to `dst`; returns how many. An emptied `unread` gives its
    // memory back (a link may stay idle for hours).
    std::size_t take_unread(std::uint8_t* dst, std::size_t max) {
        auto n = std::min(max, unread.size());
        std::copy_n(unread.begin(), n, dst);
        if (n == unread.size()) Bytes().swap(unread);
        else unread.erase(unread.begin(), unread.begin() + static_cast<std::ptrdiff_t>(n));
        return n;
    }
    static constexpr std::size_t kGreedyRead = 4096;

private:
    // Waits for readiness (no buffer held while idle), then one recvmsg into the rest of `mb` and a
    // scratch area whose bytes go to `unread`.
    void read_greedy(asio::mutable_buffer mb, std::size_t got, std::function<void(error_code, std::size_t)> h) {
        socket().async_wait(tcp::socket::wait_read, [this, mb, got, h = std::move(h)](error_code ec) mutable {
            if (ec) return h(ec, got);
            std::array<std::uint8_t, kGreedyRead> extra;
            iovec v[2] = {{static_cast<std::uint8_t*>(mb.data()) + got, mb.size() - got}, {extra.data(), extra.size()}};
            msghdr m{};
            m.msg_iov = v;
            m.msg_iovlen = 2;
            ssize_t r = ::recvmsg(socket().native_handle(), &m, MSG_DONTWAIT);
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return read_greedy(mb, got, std::move(h));
            if (r < 0) return h(error_code(errno, boost::system::system_category()), got);
            if (r == 0) return h(asio::error::eof, got);
            auto n = static_cast<std::size_t>(r);
            auto mine = std::min(n, mb.size() - got);
            got += mine;
            unread.assign(extra.begin(), extra.begin() + static_cast<std::ptrdiff_t>(n - mine));  // empty unless the request is complete
            if (got < mb.size()) return read_greedy(mb, got, std::move(h));
            h(error_code{}, got);
        });
    }
    std::variant<tcp::socket, TlsConn> v_;
};

using StreamPtr = std::shared_ptr<Stream>;

// Asio (1.74) leaves EPOLLOUT in a socket's edge-triggered epoll registration for good once anything
// waited to write on it, and a connect does: from then on every ACK that frees send space wakes the
// event loop for nothing (strace: 1-2 wasted wake-ups per proxied connection at the serving vnet).
// Registering the descriptor anew after the connect asks for reading only; a later write that would
// block adds EPOLLOUT again by itself. Costs two epoll_ctl calls.
inline void read_interest_only(tcp::socket& s, tcp proto) {
    error_code ec;
    bool nb = s.non_blocking();
    auto fd = s.release(ec);
    if (ec) return;
    s.assign(proto, fd, ec);
    if (!ec && nb) s.non_blocking(true, ec);
}

// Socket buffers for a connection to or from a vnet, sized by the round trip its handshake measured.
// On a short path (same host or a fast LAN: under kShortPathRtt) the kernel's autotuning still grows
// them to megabytes, not because the path needs it but because the reader lags behind on a busy
// machine; every hop then holds megabytes of records whose pages left the cache long before they
// are copied out again (bench/relay/README.md: a fixed 256 KiB on every link end cut the sealed
// chain's CPU per GiB by a fifth). 256 KiB (the kernel doubles it; net.core.[rw]mem_max, 208 KiB by
// default, caps it first) still carries 10 Gbit/s at that round trip. Longer paths keep
// autotuning: a fixed buffer would cap their window.
inline constexpr std::uint32_t kShortPathRtt = 200;  // microseconds
inline constexpr int kShortPathBuffer = 256 * 1024;
inline bool short_path(std::uint32_t rtt_us) { return rtt_us > 0 && rtt_us < kShortPathRtt; }  // 0: not measured
// Returns whether it fixed them.
inline bool fit_buffers_to_path(tcp::socket& s) {
    tcp_info ti{};
    socklen_t l = sizeof ti;
    int fd = s.native_handle();
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) != 0 || !short_path(ti.tcpi_rtt)) return false;
    // Best effort: a refusal leaves autotuning on, which only costs CPU.
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kShortPathBuffer, sizeof kShortPathBuffer);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kShortPathBuffer, sizeof kShortPathBuffer);
    return true;
}

// Reads one frame (header, then a payload of at most `cap` bytes) and calls back with it. A bad header
// arrives as an error_code of asio::error::invalid_argument plus the WireError text in `why`.
struct FrameRead : std::enable_shared_from_this<FrameRead> {
    using Handler = std::function<void(error_code, Frame, std::string why)>;
    StreamPtr s;
    std::uint32_t cap;
    Handler h;
    std::array<std::uint8_t, kHeaderSize> hdr{};
    Frame f;
    void start() {
        auto self = shared_from_this();
        s->async_read(asio::buffer(hdr), [self](error_code ec, std::size_t) {
            if (ec) return self->h(ec, {}, ec.message());
            Header hd;
            try {
                hd = decode_header(self->hdr, self->cap);
            } catch (const WireError& e) {
                return self->h(asio::error::invalid_argument, {}, e.what());
            }
            self->f.type = hd.type;
            self->f.payload.resize(hd.length);
            // Read with the header already (a greedy read, or the TLS record that held the header): no
            // second trip through the event loop. A heartbeat is one record, header and payload.
            std::size_t got = 0;
            if (self->s->tls()) got = self->s->tls_conn().read_decrypted(asio::buffer(self->f.payload));
            else if (self->s->unread.size() >= hd.length) got = self->s->take_unread(self->f.payload.data(), hd.length);
            if (got == hd.length) return self->h({}, std::move(self->f), {});
            self->s->async_read(asio::buffer(self->f.payload) + got, [self](error_code ec2, std::size_t) {
                self->h(ec2, std::move(self->f), ec2 ? ec2.message() : std::string());
            });
        });
    }
};

// A whole frame that an earlier greedy read took in, without waiting: false when `unread` does not
// hold one. Throws WireError on a bad header. For a caller that may go on at once (async_read_frame
// always completes through the event loop).
inline bool take_buffered_frame(Stream& s, Frame& f, std::uint32_t cap = kMaxPayload) {
    if (s.unread.size() < kHeaderSize) return false;
    auto hd = decode_header(std::span(s.unread.data(), kHeaderSize), cap);
    if (s.unread.size() - kHeaderSize < hd.length) return false;
    std::array<std::uint8_t, kHeaderSize> skip{};
    s.take_unread(skip.data(), kHeaderSize);
    f.type = hd.type;
    f.payload.resize(hd.length);
    s.take_unread(f.payload.data(), hd.length);
    return true;
}

inline void async_read_frame(const StreamPtr& s, FrameRead::Handler h, std::uint32_t cap = kMaxPayload) {
    auto r = std::make_shared<FrameRead>();
    r->s = s;
    r->cap = cap;
    r->h = std::move(h);
    r->start();
}

// Reads the peer's 8-byte hello; calls back with its version (or an error and why).
inline void async_read_hello(const StreamPtr& s, std::function<void(error_code, std::uint16_t, std::string)> h) {
    auto buf = std::make_shared<std::array<std::uint8_t, kHelloSize>>();
    s->async_read(asio::buffer(*buf), [s, buf, h = std::move(h)](error_code ec, std::size_t) {
        if (ec) return h(ec, 0, ec.message());
        try {
            h({}, decode_hello(*buf), {});
        } catch (const WireError& e) {
            h(asio::error::invalid_argument, 0, e.what());
        }
    });
}

// Writes bytes (kept alive until done) and calls back.
inline void async_write_bytes(const StreamPtr& s, Bytes b, std::function<void(error_code)> h) {
    auto buf = std::make_shared<Bytes>(std::move(b));
    s->async_write(asio::buffer(*buf), [buf, h = std::move(h)](error_code ec, std::size_t) { h(ec); });
}

// A serialised writer for a control connection: frames queue up and go out in order, one write at a
// time. While a write is out, frames queue; the next write takes all queued frames that fit in
// kBatch bytes as one buffer (a frame bigger than that goes alone): over TLS one SSL_write, so one
// record and one syscall, not one per frame. A registering vnet gets its WELCOME and then every
// serve of its group (a SERVE_UP each): two writes, not one per serve (perf on a route restart at
// 10,000 vnets: write() was a third of the route's CPU per registration).
class FrameWriter : public std::enable_shared_from_this<FrameWriter> {
public:
    // A TLS record's largest plaintext: a bigger batch would be cut into records anyway.
    static constexpr std::size_t kBatch = 16 * 1024;

    explicit FrameWriter(StreamPtr s) : s_(std::move(s)) {}
    void send(const Frame& f) { enqueue(encode_frame(f)); }
    void enqueue(Bytes b) {
        q_.push_back(std::move(b));
        queued_ += q_.back().size();
        if (q_.size() == 1) pump();
    }
    // Bytes waiting, the write under way included: a peer that stops reading while we keep queueing
    // is dropped by the caller.
    std::size_t queued() const { return queued_; }
    // Writes started so far (each one buffer: one TLS record up to kBatch).
    std::uint64_t writes() const { return writes_; }
    std::function<void(error_code)> on_error;

private:
    // Writes the frames at the queue's head that fit in kBatch (at least one); they stay queued
    // until the write is done, so enqueue() knows a write is under way.
    void pump() {
        std::size_t n = 1, bytes = q_.front().size();
        while (n < q_.size() && bytes + q_[n].size() <= kBatch) bytes += q_[n++].size();
        if (n > 1) {
            batch_.reserve(bytes);
            for (std::size_t i = 0; i < n; ++i) batch_.insert(batch_.end(), q_[i].begin(), q_[i].end());
        }
        const Bytes& out = n > 1 ? batch_ : q_.front();
        ++writes_;
        s_->async_write(asio::buffer(out), [this, self = shared_from_this(), n](error_code ec, std::size_t) {
            Bytes().swap(batch_);  // an idle session keeps no batch buffer
            if (ec) {
                q_.clear();
                queued_ = 0;
                if (on_error) on_error(ec);
                return;
            }
            for (std::size_t i = 0; i < n; ++i) {
                queued_ -= q_.front().size();
                q_.pop_front();
            }
            if (!q_.empty()) pump();
        });
    }
    StreamPtr s_;
    std::deque<Bytes> q_;
    Bytes batch_;  // the frames of a write of more than one, copied together
    std::size_t queued_ = 0;
    std::uint64_t writes_ = 0;
};

}  // namespace tn::relay
