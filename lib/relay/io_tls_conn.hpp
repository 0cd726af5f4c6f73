// TlsConn: one TLS connection driven straight on its non-blocking socket (SSL_set_fd) by Asio readiness
// waits. Asio's ssl::stream keeps two 17 KiB buffers per stream and a BIO pair with two more, about
// 68 KiB per connection even when idle, and copies every byte through them; here an idle connection
// holds only the SSL object (SSL_MODE_RELEASE_BUFFERS) and records go to the socket directly.
#pragma once

#include <utility>  // before Asio (Boost 1.74 needs it for std::exchange)

#include <boost/asio.hpp>
#include <openssl/ssl.h>

#include <functional>
#include <memory>

namespace tn::relay {

class TlsConn {
public:
    using tcp = boost::asio::ip::tcp;
    using error_code = boost::system::error_code;
    using Handler = std::function<void(error_code, std::size_t)>;
    enum class Role { client, server };

    TlsConn(tcp::socket s, SSL_CTX* ctx);
    TlsConn(const TlsConn&) = delete;
    TlsConn& operator=(const TlsConn&) = delete;

    tcp::socket& socket() { return sock_; }
    SSL* ssl() const { return ssl_.get(); }

    void async_handshake(Role role, std::function<void(error_code)> h);
    // Reads at least one byte (or reports eof when the peer closed the TLS session).
    void async_read_some(boost::asio::mutable_buffer b, Handler h);
    // Reads exactly b.size() bytes.
    void async_read(boost::asio::mutable_buffer b, Handler h);
    // Moves what a record already read holds (decrypted, SSL_pending) into b, up to b.size(), without
    // touching the socket or waiting; returns how many bytes. A frame's payload mostly came in the
    // same record as its header: read here, it needs no second trip through the event loop.
    std::size_t read_decrypted(boost::asio::mutable_buffer b);
    // Writes all of b.
    void async_write(boost::asio::const_buffer b, Handler h);

private:
    // One attempt of an SSL call; on WANT_READ/WANT_WRITE waits for the socket and calls `retry`.
    // Returns true when the call finished (ok or error), false when it is waiting.
    bool wait_for(int ssl_result, std::function<void(error_code)> retry, error_code& ec);
    void post(std::function<void()> f);
    void read_now(boost::asio::mutable_buffer b, Handler h);
    void read_rest(boost::asio::mutable_buffer b, std::size_t got, Handler h);

    tcp::socket sock_;
    std::unique_ptr<SSL, decltype(&SSL_free)> ssl_;
};

}  // namespace tn::relay
