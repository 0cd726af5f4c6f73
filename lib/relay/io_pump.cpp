// The two-way byte pump of a bound link (see io_pump.hpp for the rules it keeps).
#include "relay/io_pump.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace tn::relay {

namespace {
constexpr std::size_t kPlainChunk = 65536;
// Sealing: one read of up to kSealRead plaintext bytes becomes records of up to kSealRecord, sent in
// one write (bench/relay/README.md: 64 KiB records beat 16 KiB; 256 KiB reads cost ~15 % less CPU
// per GiB than 64 KiB ones; the buffers exist only while bytes flow).
constexpr std::size_t kSealRecord = 65536;
constexpr std::size_t kSealRead = 262144;
constexpr std::size_t kSealOut = kSealRead + (kSealRead / kSealRecord + 1) * kRecordOverhead;
// Opening: room for a partial record plus a whole one of the largest size a peer may send.
constexpr std::size_t kOpenIn = 2 * (kRecordMax + kRecordOverhead);

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

std::shared_ptr<Pump> Pump::start(StreamPtr a, StreamPtr b, Done done, PipePool* pipes, std::unique_ptr<LinkSeal> seal_a,
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
    if (pipes && !p->seal_a_ && !p->seal_b_) p->pipes_ = pipes;
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

void Pump::resume(int d) {
    if (!finished_) read(d);
}

void Pump::abort(const std::string& why, bool reset_local) { finish(why, reset_local); }

bool Pump::detach() {
    if (finished_) return false;
    for (auto& x : dir_)
        if (x.in_pipe || x.have || x.done) return false;
    finished_ = true;
    error_code ec;
    a_->socket().cancel(ec);  // the pending readiness waits end with operation_aborted and see finished_
    b_->socket().cancel(ec);
    for (auto& x : dir_)
        if (x.pipe) pipes_->give(std::move(x.pipe));
    done_ = nullptr;
    return true;
}

void Pump::read(int d) {
    if (pipes_) return splice_in(d);
    auto self = shared_from_this();
    dir_[d].from->socket().async_wait(tcp::socket::wait_read, [this, self, d](error_code ec) {
        if (finished_) return;
        if (ec) return finish(ec.message());
        try_read(d);
    });
}

void Pump::try_read(int d) {
    Dir& x = dir_[d];
    std::size_t cap = x.open ? kOpenIn : x.seal ? kSealRead : kPlainChunk;
    if (!x.in) x.in.reset(new std::uint8_t[cap]);
    error_code ec;
    std::size_t n = x.from->socket().read_some(asio::buffer(x.in.get() + x.have, cap - x.have), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
        // Drained: an idle direction gives its buffers back (a partial record keeps `in`).
        if (x.have == 0) x.in.reset();
        x.out.reset();
        return read(d);
    }
    if (ec == asio::error::eof) {
        if (x.open) return finish("truncated: the link closed without its EOF record", true);
        return eof(d);
    }
    if (ec) return finish(ec.message(), x.open != nullptr);
    // A read that did not fill the room emptied the socket: after the write, wait for readiness
    // instead of a read that would only say EAGAIN (one syscall less per chunk of small traffic).
    x.drained = n < cap - x.have;
    process(d, n);
}

void Pump::process(int d, std::size_t n) {
    Dir& x = dir_[d];
    x.have += n;
    if (x.open) {
        if (!x.out) x.out.reset(new std::uint8_t[kOpenIn]);
        std::size_t pos = 0, outn = 0;
        bool got_eof = false;
        try {
            while (x.have - pos >= kRecordHeader) {
                auto h = RecordOpener::head(std::span(x.in.get() + pos, kRecordHeader));
                if (x.have - pos < h.size()) break;
                outn += x.open->open(std::span(x.in.get() + pos, h.size()), x.out.get() + outn);
                pos += h.size();
                if (h.eof) {
                    got_eof = true;
                    break;
                }
            }
            if (got_eof && pos != x.have) throw WireError("bytes after the EOF record");
        } catch (const WireError& e) {
            return finish(std::string("protocol error: ") + e.what(), true);
        }
        std::memmove(x.in.get(), x.in.get() + pos, x.have - pos);
        x.have -= pos;
        if (outn == 0) return got_eof ? eof(d) : try_read(d);
        return write(d, x.out.get(), outn, got_eof);
    }
    if (x.seal) {
        if (!x.out) x.out.reset(new std::uint8_t[kSealOut]);
        std::size_t outn = 0;
        for (std::size_t p = 0; p < x.have;) {
            auto m = std::min(kSealRecord, x.have - p);
            outn += x.seal->seal(std::span(x.in.get() + p, m), x.out.get() + outn);
            p += m;
        }
        x.have = 0;
        x.bytes += n;
        return write(d, x.out.get(), outn, false);
    }
    x.have = 0;
    x.bytes += n;
    write(d, x.in.get(), n, false);
}

void Pump::write(int d, const std::uint8_t* p, std::size_t n, bool then_eof) {
    auto self = shared_from_this();
    if (dir_[d].open) dir_[d].bytes += n;
    asio::async_write(dir_[d].to->socket(), asio::buffer(p, n), [this, self, d, then_eof](error_code ec, std::size_t) {
        if (finished_) return;
        if (ec) return finish(ec.message(), seal_a_ || seal_b_);
        if (then_eof) return eof(d);
        if (dir_[d].drained) {
            if (!dir_[d].have) dir_[d].in.reset();
            dir_[d].out.reset();
            return read(d);
        }
        try_read(d);
    });
}

void Pump::splice_in(int d) {
    auto self = shared_from_this();
    dir_[d].from->socket().async_wait(tcp::socket::wait_read, [this, self, d](error_code ec) {
        if (finished_) return;
        if (ec) return finish(ec.message());
        Dir& y = dir_[d];
        if (!y.pipe) y.pipe = pipes_->take();
        // Out of fds for a pipe: copy through userspace until the socket is drained; then try again.
        if (!y.pipe) return try_read(d);
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

void Pump::eof(int d) {
    auto self = shared_from_this();
    Dir& x = dir_[d];
    x.in.reset();
    x.out.reset();
    auto after = [this, self, d](error_code ec) {
        if (finished_) return;
        if (ec) return finish(ec.message());
        // Plain TCP half-close. A sealed link's end is its EOF record alone: the connection stays up
        // for reuse, or closes (FIN) once both directions ended.
        if (!dir_[d].seal) dir_[d].to->socket().shutdown(tcp::socket::shutdown_send, ec);
        dir_[d].done = true;
        if (dir_[0].done && dir_[1].done) finish({});
    };
    if (!x.seal) return after({});
    kept_ = keep_sealed_ && keep_sealed_();
    auto n = x.seal->seal_eof(x.eof_rec.data(), kept_);
    asio::async_write(x.to->socket(), asio::buffer(x.eof_rec.data(), n), [after](error_code ec, std::size_t) { after(ec); });
}

void Pump::finish(const std::string& error, bool reset_local) {
    if (finished_) return;
    finished_ = true;
    if (reset_local) {
        if (!seal_a_) reset_on_close(a_.get());
        if (!seal_b_) reset_on_close(b_.get());
    }
    bool keep = kept_ && error.empty();
    if (!(keep && seal_a_)) a_->close();
    if (!(keep && seal_b_)) b_->close();
    for (auto& x : dir_) {
        x.in.reset();
        x.out.reset();
        // A pipe with bytes still in it is closed, not pooled: the next user would get them.
        x.pipe = {};
    }
    if (done_) {
        auto d = std::move(done_);
        d(error, dir_[0].bytes, dir_[1].bytes);
    }
}

}  // namespace tn::relay
