// TLS on a non-blocking socket: SSL calls retried on socket readiness (see io_tls_conn.hpp).
#include "relay/io_tls_conn.hpp"

#include <boost/asio/ssl/error.hpp>
#include <openssl/err.h>

#include <algorithm>
#include <cerrno>

namespace tn::relay {

namespace asio = boost::asio;

TlsConn::TlsConn(tcp::socket s, SSL_CTX* ctx) : sock_(std::move(s)), ssl_(SSL_new(ctx), SSL_free) {
    error_code ec;
    sock_.non_blocking(true, ec);
    if (ssl_) SSL_set_fd(ssl_.get(), sock_.native_handle());
}

void TlsConn::post(std::function<void()> f) {
    // Completions never run inside the call that started them: a pump that keeps finding data buffered
    // in the SSL object would otherwise recurse without bound.
    asio::post(sock_.get_executor(), std::move(f));
}

bool TlsConn::wait_for(int ssl_result, std::function<void(error_code)> retry, error_code& ec) {
    int e = SSL_get_error(ssl_.get(), ssl_result);
    switch (e) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
            // `retry` must report a failed wait without touching this object: a closed or destroyed
            // socket completes its waits with operation_aborted after the TlsConn may be gone.
            sock_.async_wait(e == SSL_ERROR_WANT_READ ? tcp::socket::wait_read : tcp::socket::wait_write, std::move(retry));
            return false;
        case SSL_ERROR_ZERO_RETURN:
            ec = asio::error::eof;  // close_notify
            break;
        case SSL_ERROR_SYSCALL:
            ec = errno ? error_code(errno, boost::system::system_category()) : error_code(asio::error::eof);
            break;
        default: {
            unsigned long err = ERR_peek_last_error();
            // A peer that closed the socket without close_notify: the relay's own framing (DATA/EOF)
            // already tells a clean end from a cut one, so this is just end of stream.
            if (ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) ec = asio::error::eof;
            else ec = error_code(static_cast<int>(err), asio::error::get_ssl_category());
            break;
        }
    }
    ERR_clear_error();
    return true;
}

void TlsConn::async_handshake(Role role, std::function<void(error_code)> h) {
    if (!ssl_) return post([h]() { h(asio::error::no_memory); });
    if (role == Role::server) SSL_set_accept_state(ssl_.get());
    else SSL_set_connect_state(ssl_.get());
    // Only the pending wait owns `step`; `step` sees itself weakly (as async_read does). Capturing itself
    // kept a handshake still waiting at shutdown, its handler and the connection alive forever.
    auto step = std::make_shared<std::function<void(error_code)>>();
    std::weak_ptr<std::function<void(error_code)>> self = step;
    *step = [this, h, self](error_code wec) {
        if (wec || !sock_.is_open()) return h(wec ? wec : error_code(asio::error::operation_aborted));
        ERR_clear_error();
        int r = SSL_do_handshake(ssl_.get());
        if (r == 1) return h({});
        error_code ec;
        auto again = self.lock();  // alive: the caller of this step holds it
        if (wait_for(r, [again](error_code e) { (*again)(e); }, ec)) h(ec);
    };
    post([step]() { (*step)({}); });
}

void TlsConn::async_read_some(asio::mutable_buffer b, Handler h) {
    if (!sock_.is_open() || !ssl_) return post([h]() { h(asio::error::operation_aborted, 0); });
    if (b.size() == 0) return post([h]() { h({}, 0); });
    // SSL_read on an empty socket would allocate the record buffer (SSL_CTX_set_default_read_buffer_len)
    // for one failed read: so wait for the socket first, unless OpenSSL already holds bytes (a record
    // read ahead) or the socket has some. A wait would also see bytes already there (Asio 1.74 arms
    // every wait with epoll_ctl(EPOLL_CTL_MOD), and the kernel reports a descriptor readable at that
    // moment: test_relay_tls_read.cpp), but through one more trip round the event loop: without the
    // FIONREAD, bench_relay's concurrent connection setup fell by a seventh, for one syscall saved on
    // an idle heartbeat.
    error_code aec;
    if (!SSL_has_pending(ssl_.get()) && sock_.available(aec) == 0 && !aec) {
        return sock_.async_wait(tcp::socket::wait_read, [this, b, h](error_code wec) {
            if (wec) return h(wec, 0);
            read_now(b, h);
        });
    }
    read_now(b, h);
}

std::size_t TlsConn::read_decrypted(asio::mutable_buffer b) {
    // Only what SSL_pending says a record already holds: SSL_read then never touches the socket.
    std::size_t want = std::min(b.size(), static_cast<std::size_t>(ssl_ ? SSL_pending(ssl_.get()) : 0));
    std::size_t n = 0;
    if (want == 0) return 0;
    ERR_clear_error();
    if (SSL_read_ex(ssl_.get(), b.data(), want, &n) != 1) {
        ERR_clear_error();
        return 0;
    }
    return n;
}

void TlsConn::read_now(asio::mutable_buffer b, Handler h) {
    if (!sock_.is_open()) return post([h]() { h(asio::error::operation_aborted, 0); });
    ERR_clear_error();
    std::size_t n = 0;
    int r = SSL_read_ex(ssl_.get(), b.data(), b.size(), &n);
    if (r == 1) return post([h, n]() { h({}, n); });
    error_code ec;
    auto retry = [this, b, h](error_code wec) {
        if (wec) return h(wec, 0);
        read_now(b, h);
    };
    if (wait_for(r, retry, ec)) post([h, ec]() { h(ec, 0); });
}

void TlsConn::async_read(asio::mutable_buffer b, Handler h) {
    // Most reads (a frame header, a heartbeat) finish in one SSL_read: the loop below is built only for
    // a read that comes back short.
    async_read_some(b, [this, b, h](error_code ec, std::size_t n) {
        if (ec || n == b.size()) return h(ec, n);
        read_rest(b, n, h);
    });
}

void TlsConn::read_rest(asio::mutable_buffer b, std::size_t got, Handler h) {
    // Only the pending read owns `step`; `step` sees itself weakly. It captured itself before, so a read
    // still pending at shutdown (the io_context drops its handler) kept itself, `h` and the stream alive
    // forever: LeakSanitizer's report at every tn-route and tn-vnet exit.
    auto done = std::make_shared<std::size_t>(got);
    auto step = std::make_shared<Handler>();
    std::weak_ptr<Handler> self = step;
    *step = [this, b, h, done, self](error_code ec, std::size_t n) {
        *done += n;
        if (ec || *done == b.size()) return h(ec, *done);
        if (auto again = self.lock()) async_read_some(b + *done, [again](error_code e, std::size_t k) { (*again)(e, k); });
    };
    async_read_some(b + got, [step](error_code e, std::size_t k) { (*step)(e, k); });
}

void TlsConn::async_write(asio::const_buffer b, Handler h) {
    if (!sock_.is_open() || !ssl_) return post([h]() { h(asio::error::operation_aborted, 0); });
    if (b.size() == 0) return post([h]() { h({}, 0); });
    ERR_clear_error();
    std::size_t n = 0;
    // Without SSL_MODE_ENABLE_PARTIAL_WRITE, SSL_write finishes the whole buffer or asks to be called
    // again with the same buffer once the socket can take more.
    int r = SSL_write_ex(ssl_.get(), b.data(), b.size(), &n);
    if (r == 1) return post([h, n]() { h({}, n); });
    error_code ec;
    auto retry = [this, b, h](error_code wec) {
        if (wec) return h(wec, 0);
        async_write(b, h);
    };
    if (wait_for(r, retry, ec)) post([h, ec]() { h(ec, 0); });
}

}  // namespace tn::relay
