// The two-way byte pump of a bound link (see io_pump.hpp for the rules it keeps).
#include "relay/io_pump.hpp"

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

std::shared_ptr<Pump> Pump::start(StreamPtr a, StreamPtr b, Done done) {
    std::shared_ptr<Pump> p(new Pump(std::move(a), std::move(b), std::move(done)));
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
    if (done_) {
        auto d = std::move(done_);
        d(error, dir_[0].bytes, dir_[1].bytes);
    }
}

}  // namespace tn::relay
