// Batched UDP I/O: one recvmmsg or sendmmsg moves up to 32 datagrams, into buffers allocated once.
#include "io_udp.hpp"

#include <netdb.h>
#include <poll.h>

#include <cerrno>
#include <cstring>

#include "base/error.hpp"
#include "base/net_addr.hpp"

namespace tn::tuntool {

tun::Endpoint resolve(const std::string& host_port) {
    HostPort hp;
    try {
        hp = parse_host_port(host_port);
    } catch (const ParseError& e) {
        throw Error(ExitCode::config, e.what());
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(hp.host.c_str(), std::to_string(hp.port).c_str(), &hints, &res);
    if (rc != 0 || !res) throw Error(ExitCode::unavailable, "cannot resolve " + hp.host + ": " + gai_strerror(rc));
    tun::Endpoint e;
    std::memcpy(&e.sa, res->ai_addr, res->ai_addrlen);
    e.len = res->ai_addrlen;
    freeaddrinfo(res);
    return e;
}

UdpSocket::UdpSocket(const std::string& bind, int family)
    : rx_(batch), scratch_(batch), tx_(batch) {
    tun::Endpoint local;
    if (!bind.empty()) {
        local = resolve(bind);
        family = local.sa.ss_family;
    }
    fd_.reset(::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd_) throw Error(ExitCode::io, std::string("socket: ") + std::strerror(errno));
    // Bigger socket buffers absorb bursts while the other direction is being served.
    int size = 4 << 20;
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    if (!bind.empty() && ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&local.sa), local.len) < 0)
        throw Error(ExitCode::io, "cannot listen on " + bind + ": " + std::strerror(errno));
    for (std::size_t i = 0; i < batch; ++i) {
        rx_iov_[i] = iovec{rx_[i].data(), tun::max_datagram_len + 1};  // +1: an oversize datagram shows as such
        rx_msgs_[i].msg_hdr.msg_iov = &rx_iov_[i];
        rx_msgs_[i].msg_hdr.msg_iovlen = 1;
    }
}

std::string UdpSocket::local() const {
    tun::Endpoint e;
    e.len = sizeof e.sa;
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&e.sa), &e.len);
    return e.str();
}

std::size_t UdpSocket::receive() {
    for (std::size_t i = 0; i < batch; ++i) {
        rx_msgs_[i].msg_hdr.msg_name = &rx_from_[i].sa;
        rx_msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
        rx_msgs_[i].msg_hdr.msg_flags = 0;
    }
    int n = ::recvmmsg(fd_.get(), rx_msgs_.data(), batch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return 0;
    for (int i = 0; i < n; ++i) {
        rx_from_[i].len = rx_msgs_[i].msg_hdr.msg_namelen;
        // A truncated datagram is longer than any we accept: mark it so classify() drops it.
        rx_lens_[i] = (rx_msgs_[i].msg_hdr.msg_flags & MSG_TRUNC) ? tun::max_datagram_len + 1 : rx_msgs_[i].msg_len;
    }
    return static_cast<std::size_t>(n);
}

void UdpSocket::queue(tun::Bytes data, const tun::Endpoint& to) {
    if (data.empty()) return;
    tx_to_[queued_] = to;
    tx_iov_[queued_] = iovec{const_cast<std::uint8_t*>(data.data()), data.size()};
    auto& h = tx_msgs_[queued_].msg_hdr;
    h = msghdr{};
    h.msg_name = &tx_to_[queued_].sa;
    h.msg_namelen = tx_to_[queued_].len;
    h.msg_iov = &tx_iov_[queued_];
    h.msg_iovlen = 1;
    if (++queued_ == batch) flush();
}

void UdpSocket::flush() {
    std::size_t done = 0;
    while (done < queued_) {
        int n = ::sendmmsg(fd_.get(), tx_msgs_.data() + done, queued_ - done, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                // A full send buffer: wait briefly rather than drop (drops make TCP inside back off hard).
                pollfd p{fd_.get(), POLLOUT, 0};
                if (::poll(&p, 1, 10) > 0) continue;
                break;
            }
            ++done;  // this destination failed (unreachable): skip it, send the rest
            continue;
        }
        done += static_cast<std::size_t>(n);
        if (n == 0) break;
    }
    queued_ = 0;
}

}  // namespace tn::tuntool
