// The two-way byte pump of a bound link (see io_pump.hpp for the rules it keeps).
#include "relay/io_pump.hpp"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

namespace tn::relay {

namespace {
constexpr std::size_t kChunk = kMaxPayload;  // one DATA frame's worth
}

Pump::Pump(StreamPtr a, StreamPtr b, Done done) : a_(std::move(a)), b_(std::move(b)), done_(std::move(done)) {
    dir_[0].from = a_.get();
    dir_[0].to = b_.get();
    dir_[1].from = b_.get();
    dir_[1].to = a_.get();
}

std::shared_ptr<Pump> Pump::start(StreamPtr a, StreamPtr b, Done done, PipePool* pipes) {
    std::shared_ptr<Pump> p(new Pump(std::move(a), std::move(b), std::move(done)));
    if (pipes && !p->a_->tls() && !p->b_->tls()) p->pipes_ = pipes;
    error_code ec;
    for (auto* s : {p->a_.get(), p->b_.get()}) {
        if (!s->tls()) s->socket().non_blocking(true, ec);
        s->socket().set_option(tcp::no_delay(true), ec);
    }
    p->read(0);
    p->read(1);
    return p;
}

void Pump::abort() { finish("aborted"); }

void Pump::read(int d) {
    auto self = shared_from_this();
    Dir& x = dir_[d];
    if (pipes_) return splice_in(d);
    if (!x.from->tls()) {
        // Wait for readability first and allocate the buffer only then (idle links stay small).
        x.from->socket().async_wait(tcp::socket::wait_read, [this, self, d](error_code ec) {
            if (finished_) return;
            if (ec) return finish(ec.message());
            Dir& y = dir_[d];
            if (!y.buf) y.buf.reset(new std::uint8_t[kHeaderSize + kChunk]);
            error_code rec;
            std::size_t n = y.from->socket().read_some(asio::buffer(y.buf.get() + kHeaderSize, kChunk), rec);
            if (rec == asio::error::would_block || rec == asio::error::try_again) return read(d);
            if (rec == asio::error::eof) return eof(d);
            if (rec) return finish(rec.message());
            got(d, n);
        });
        return;
    }
    x.from->async_read(asio::buffer(x.in_hdr), [this, self, d](error_code ec, std::size_t) {
        if (finished_) return;
        if (ec) return finish(ec == asio::error::eof ? "link closed without EOF frame" : ec.message());
        Dir& y = dir_[d];
        Header h;
        try {
            h = decode_header(y.in_hdr);
        } catch (const WireError& e) {
            return finish(std::string("protocol error: ") + e.what());
        }
        if (h.type == MsgType::eof && h.length == 0) return eof(d);
        if (h.type != MsgType::data || h.length == 0)
            return finish("protocol error: unexpected " + std::string(type_name(h.type)) + " frame on a bound link");
        if (!y.buf) y.buf.reset(new std::uint8_t[kHeaderSize + kChunk]);
        y.from->async_read(asio::buffer(y.buf.get() + kHeaderSize, h.length), [this, self, d](error_code ec2, std::size_t n) {
            if (finished_) return;
            if (ec2) return finish(ec2.message());
            got(d, n);
        });
    });
}

void Pump::splice_in(int d) {
    auto self = shared_from_this();
    dir_[d].from->socket().async_wait(tcp::socket::wait_read, [this, self, d](error_code ec) {
        if (finished_) return;
        if (ec) return finish(ec.message());
        Dir& y = dir_[d];
        if (!y.pipe) y.pipe = pipes_->take();
        if (!y.pipe) {
            // Out of fds for a pipe: this chunk goes through userspace instead; the next tries again.
            if (!y.buf) y.buf.reset(new std::uint8_t[kHeaderSize + kChunk]);
            error_code rec;
            std::size_t n = y.from->socket().read_some(asio::buffer(y.buf.get() + kHeaderSize, kChunk), rec);
            if (rec == asio::error::would_block || rec == asio::error::try_again) return splice_in(d);
            if (rec == asio::error::eof) return eof(d);
            if (rec) return finish(rec.message());
            return got(d, n);
        }
        ssize_t n = ::splice(y.from->socket().native_handle(), nullptr, y.pipe.w.get(), nullptr, kPipeSize,
                             SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return splice_in(d);
        if (n < 0) return finish(std::strerror(errno));
        if (n == 0) {
            pipes_->give(std::move(y.pipe));
            y.pipe = {};
            return eof(d);
        }
        y.in_pipe = static_cast<std::size_t>(n);
        splice_out(d);
    });
}

void Pump::splice_out(int d) {
    Dir& y = dir_[d];
    while (y.in_pipe > 0) {
        ssize_t m = ::splice(y.pipe.r.get(), nullptr, y.to->socket().native_handle(), nullptr, y.in_pipe,
                             SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (m < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            // The receiver is slow: wait until its socket takes more (backpressure: no read meanwhile).
            auto self = shared_from_this();
            return y.to->socket().async_wait(tcp::socket::wait_write, [this, self, d](error_code ec) {
                if (finished_) return;
                if (ec) return finish(ec.message());
                splice_out(d);
            });
        }
        if (m <= 0) return finish(m == 0 ? "splice wrote nothing" : std::strerror(errno));
        y.in_pipe -= static_cast<std::size_t>(m);
        y.bytes += static_cast<std::uint64_t>(m);
    }
    // Empty again: the pipe goes back, so an idle connection holds none.
    pipes_->give(std::move(y.pipe));
    y.pipe = {};
    splice_in(d);
}

void Pump::got(int d, std::size_t n) {
    auto self = shared_from_this();
    Dir& x = dir_[d];
    x.n = n;
    auto after = [this, self, d](error_code ec, std::size_t) {
        if (finished_) return;
        if (ec) return finish(ec.message());
        Dir& y = dir_[d];
        y.bytes += y.n;
        y.buf.reset();
        read(d);
    };
    if (x.to->tls()) {
        // The header goes in the room kept before the payload: one contiguous write, so the TLS layer
        // does not spend a record on 8 bytes.
        auto h = encode_header(MsgType::data, static_cast<std::uint32_t>(n));
        std::memcpy(x.buf.get(), h.data(), kHeaderSize);
        x.to->async_write(asio::buffer(x.buf.get(), kHeaderSize + n), after);
    } else {
        x.to->async_write(asio::buffer(x.buf.get() + kHeaderSize, n), after);
    }
}

void Pump::eof(int d) {
    auto self = shared_from_this();
    Dir& x = dir_[d];
    x.buf.reset();
    auto after = [this, self, d](error_code ec, std::size_t) {
        if (finished_) return;
        if (ec) return finish(ec.message());
        dir_[d].done = true;
        if (dir_[0].done && dir_[1].done) finish({});
    };
    if (x.to->tls()) {
        x.out_hdr = encode_header(MsgType::eof, 0);
        x.to->async_write(asio::buffer(x.out_hdr), after);
    } else {
        error_code ec;
        x.to->socket().shutdown(tcp::socket::shutdown_send, ec);
        after(ec, 0);
    }
}

void Pump::finish(const std::string& error) {
    if (finished_) return;
    finished_ = true;
    a_->close();
    b_->close();
    dir_[0].buf.reset();
    dir_[1].buf.reset();
    // A pipe with bytes still in it is closed, not pooled: the next user would get them.
    dir_[0].pipe = {};
    dir_[1].pipe = {};
    if (done_) {
        auto d = std::move(done_);
        d(error, dir_[0].bytes, dir_[1].bytes);
    }
}

}  // namespace tn::relay
