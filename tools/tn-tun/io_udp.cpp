// Batched UDP I/O into buffers allocated once: recvmmsg with GRO trains split back into datagrams,
// sendmmsg with runs of same-size datagrams to one peer sent as one GSO message.
#include "io_udp.hpp"

#include <netdb.h>
#include <netinet/udp.h>
#include <poll.h>

#include <algorithm>
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

UdpSocket::UdpSocket(const std::string& bind, int family, bool offload)
    : rx_mem_(rx_batch * rx_buf_size), scratch_(scratch_slots), tx_(tx_slots) {
    views_.reserve(rx_batch * max_gso_segments);
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
    if (offload) {
        // GRO: a train of same-size datagrams from one sender arrives as one buffer plus its
        // segment size. GSO: the option with size 0 only probes that the kernel knows it.
        int on = 1, zero = 0;
        gro_ = ::setsockopt(fd_.get(), SOL_UDP, UDP_GRO, &on, sizeof on) == 0;
        gso_ = ::setsockopt(fd_.get(), SOL_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0;
    }
    if (!bind.empty() && ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&local.sa), local.len) < 0)
        throw Error(ExitCode::io, "cannot listen on " + bind + ": " + std::strerror(errno));
    for (std::size_t i = 0; i < rx_batch; ++i) {
        rx_iov_[i] = iovec{rx_mem_.data() + i * rx_buf_size, rx_buf_size};
        rx_msgs_[i].msg_hdr.msg_iov = &rx_iov_[i];
        rx_msgs_[i].msg_hdr.msg_iovlen = 1;
    }
}

bool UdpSocket::set_mark(std::uint32_t mark) {
    return ::setsockopt(fd_.get(), SOL_SOCKET, SO_MARK, &mark, sizeof mark) == 0;
}

std::string UdpSocket::local() const {
    tun::Endpoint e;
    e.len = sizeof e.sa;
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&e.sa), &e.len);
    return e.str();
}

std::size_t UdpSocket::receive() {
    views_.clear();
    for (std::size_t i = 0; i < rx_batch; ++i) {
        auto& h = rx_msgs_[i].msg_hdr;
        h.msg_name = &rx_from_[i].sa;
        h.msg_namelen = sizeof(sockaddr_storage);
        h.msg_control = gro_ ? rx_ctl_[i].data() : nullptr;
        h.msg_controllen = gro_ ? rx_ctl_[i].size() : 0;
        h.msg_flags = 0;
    }
    int n = ::recvmmsg(fd_.get(), rx_msgs_.data(), rx_batch, MSG_DONTWAIT, nullptr);
    msgs_ = n > 0 ? static_cast<std::size_t>(n) : 0;
    if (n <= 0) return 0;
    for (int i = 0; i < n; ++i) {
        auto& h = rx_msgs_[i].msg_hdr;
        rx_from_[i].len = h.msg_namelen;
        std::uint8_t* data = static_cast<std::uint8_t*>(rx_iov_[i].iov_base);
        std::size_t len = rx_msgs_[i].msg_len;
        if (h.msg_flags & MSG_TRUNC) {
            // Longer than any datagram we accept: one oversize view that classify() drops.
            views_.push_back({data, tun::max_datagram_len + 1, std::size_t(i)});
            continue;
        }
        std::size_t seg = len;
        if (gro_) {
            for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c))
                if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
                    int v;
                    std::memcpy(&v, CMSG_DATA(c), sizeof v);
                    if (v > 0) seg = static_cast<std::size_t>(v);
                }
        }
        for (std::size_t off = 0; off < len; off += seg)
            views_.push_back({data + off, std::min(seg, len - off), std::size_t(i)});
        if (len == 0) views_.push_back({data, 0, std::size_t(i)});
    }
    return views_.size();
}

void UdpSocket::take_scratch() {
    if (++scratch_used_ == scratch_slots) flush();  // flush() frees them all
}

void UdpSocket::queue(tun::Bytes data, const tun::Endpoint& to) {
    if (data.empty()) return;
    if (queued_iovs_ == tx_slots) flush();
    tx_iov_[queued_iovs_] = iovec{const_cast<std::uint8_t*>(data.data()), data.size()};
    if (gso_ && queued_msgs_ > 0) {
        TxMsg& m = tx_meta_[queued_msgs_ - 1];
        if (!m.closed && data.size() <= m.seg && m.count < max_gso_segments && m.bytes + data.size() <= max_gso_bytes &&
            tx_to_[queued_msgs_ - 1] == to) {
            // The next datagram of a train: the kernel cuts the message at every m.seg bytes.
            ++m.count;
            m.bytes += data.size();
            m.closed = data.size() < m.seg;
            ++queued_iovs_;
            return;
        }
    }
    tx_to_[queued_msgs_] = to;
    tx_meta_[queued_msgs_] = TxMsg{queued_iovs_, 1, data.size(), data.size(), false};
    ++queued_msgs_;
    ++queued_iovs_;
}

void UdpSocket::send_singly(const TxMsg& m) {
    for (std::size_t k = 0; k < m.count; ++k) {
        msghdr h{};
        h.msg_name = &tx_to_[&m - tx_meta_.data()].sa;
        h.msg_namelen = tx_to_[&m - tx_meta_.data()].len;
        h.msg_iov = &tx_iov_[m.first_iov + k];
        h.msg_iovlen = 1;
        ::sendmsg(fd_.get(), &h, 0);
    }
}

void UdpSocket::flush() {
    for (std::size_t i = 0; i < queued_msgs_; ++i) {
        const TxMsg& m = tx_meta_[i];
        auto& h = tx_msgs_[i].msg_hdr;
        h = msghdr{};
        h.msg_name = &tx_to_[i].sa;
        h.msg_namelen = tx_to_[i].len;
        h.msg_iov = &tx_iov_[m.first_iov];
        h.msg_iovlen = m.count;
        if (m.count > 1) {
            h.msg_control = tx_ctl_[i].data();
            h.msg_controllen = CMSG_SPACE(sizeof(std::uint16_t));
            cmsghdr* c = CMSG_FIRSTHDR(&h);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
            auto seg = static_cast<std::uint16_t>(m.seg);
            std::memcpy(CMSG_DATA(c), &seg, sizeof seg);
        }
    }
    std::size_t done = 0;
    while (done < queued_msgs_) {
        int n = ::sendmmsg(fd_.get(), tx_msgs_.data() + done, queued_msgs_ - done, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                // A full send buffer: wait briefly rather than drop (drops make TCP inside back off hard).
                pollfd p{fd_.get(), POLLOUT, 0};
                if (::poll(&p, 1, 10) > 0) continue;
                break;
            }
            if (tx_meta_[done].count > 1 && (errno == EINVAL || errno == EIO || errno == EMSGSIZE)) {
                // The path cannot take this GSO send (a segment over its MTU, no checksum offload):
                // send this train datagram by datagram and stop merging.
                gso_ = false;
                send_singly(tx_meta_[done]);
            }
            ++done;  // this destination failed (unreachable): skip it, send the rest
            continue;
        }
        done += static_cast<std::size_t>(n);
        if (n == 0) break;
    }
    queued_msgs_ = queued_iovs_ = 0;
    scratch_used_ = 0;
}

}  // namespace tn::tuntool
