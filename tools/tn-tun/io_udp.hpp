// A UDP socket with batched receive and send (recvmmsg/sendmmsg) over preallocated buffers.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "base/unique_fd.hpp"
#include "tun/server_core.hpp"

namespace tn::tuntool {

// Resolves host:port (numeric or a name) to an endpoint. Throws tn::Error(unavailable).
tun::Endpoint resolve(const std::string& host_port);

class UdpSocket {
public:
    static constexpr std::size_t batch = 32;     // datagrams per syscall
    static constexpr std::size_t slot_size = tun::max_datagram_len + 64;

    // Binds to `bind` (empty: an ephemeral port of `family`). Throws tn::Error(io).
    UdpSocket(const std::string& bind, int family = AF_INET);
    int fd() const { return fd_.get(); }
    std::string local() const;

    // Receives up to `batch` datagrams into the receive slots; returns how many (0 if none waiting).
    std::size_t receive();
    std::uint8_t* rx(std::size_t i) { return rx_[i].data(); }
    std::size_t rx_len(std::size_t i) const { return rx_lens_[i]; }
    const tun::Endpoint& rx_from(std::size_t i) const { return rx_from_[i]; }
    // Scratch buffers, one per receive slot, for replies that must not overwrite the datagram.
    std::uint8_t* scratch(std::size_t i) { return scratch_[i].data(); }
    // Buffers for packets read from the TUN (headroom for the header, room for the tag).
    std::uint8_t* tx_slot(std::size_t i) { return tx_[i].data(); }

    // Queues a datagram (the bytes must stay valid until flush()); flushes when the batch is full.
    void queue(tun::Bytes data, const tun::Endpoint& to);
    // Sends everything queued (sendmmsg); a full socket buffer drops the rest, as a router would.
    void flush();

private:
    UniqueFd fd_;
    std::vector<std::array<std::uint8_t, slot_size>> rx_, scratch_, tx_;
    std::array<std::size_t, batch> rx_lens_{};
    std::array<tun::Endpoint, batch> rx_from_{};
    std::array<mmsghdr, batch> rx_msgs_{};
    std::array<iovec, batch> rx_iov_{};
    std::array<mmsghdr, batch> tx_msgs_{};
    std::array<iovec, batch> tx_iov_{};
    std::array<tun::Endpoint, batch> tx_to_{};
    std::size_t queued_ = 0;
};

}  // namespace tn::tuntool
