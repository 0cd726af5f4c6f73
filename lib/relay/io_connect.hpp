// connect_nearby: a TCP connect to a service on this host or a fast LAN (a serving vnet's local
// service) that finishes inside connect(2) when the path is short.
#pragma once

#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <functional>

#include "relay/io_stream.hpp"

namespace tn::relay {

// On loopback the whole handshake runs inside connect(2) (the SYN, SYN-ACK and ACK are processed
// before it returns EINPROGRESS), so the socket is ESTABLISHED or already refused by then: one
// TCP_INFO read says which, and `done` runs at once, inside this call. Asio's async_connect would
// first register for writability, go back to the event loop, poll and read SO_ERROR, and leave
// EPOLLOUT registered (read_interest_only): strace counted eight more syscalls per proxied connection
// at the serving vnet. A longer path waits for the handshake as usual. The socket comes back
// non-blocking with TCP_NODELAY set.
inline void connect_nearby(tcp::socket& s, const tcp::endpoint& ep, std::function<void(error_code)> done) {
    error_code ec;
    s.open(ep.protocol(), ec);
    if (!ec) s.set_option(tcp::no_delay(true), ec);
    if (!ec) s.non_blocking(true, ec);
    if (ec) return done(ec);
    int fd = s.native_handle();
    int r;
    do r = ::connect(fd, ep.data(), static_cast<socklen_t>(ep.size()));
    while (r != 0 && errno == EINTR);
    if (r == 0) return done({});
    if (errno != EINPROGRESS) return done(error_code(errno, boost::system::system_category()));
    auto outcome = [fd]() -> error_code {
        int err = 0;
        socklen_t l = sizeof err;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0) err = errno;
        return err ? error_code(err, boost::system::system_category()) : error_code{};
    };
    tcp_info ti{};
    socklen_t l = sizeof ti;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0) {
        if (ti.tcpi_state == TCP_ESTABLISHED) return done({});
        if (ti.tcpi_state != TCP_SYN_SENT) return done(outcome());  // refused (or reset) already
    }
    auto proto = ep.protocol();
    s.async_wait(tcp::socket::wait_write, [&s, proto, outcome, done = std::move(done)](error_code wec) {
        if (wec) return done(wec);
        auto res = outcome();
        if (!res) read_interest_only(s, proto);
        done(res);
    });
}

}  // namespace tn::relay
