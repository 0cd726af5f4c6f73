// A UDP socket with batched receive and send (recvmmsg/sendmmsg) over preallocated buffers, with
// UDP GRO on receive and UDP GSO on send where the kernel has them.
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
    static constexpr std::size_t rx_batch = 32;         // receive buffers per recvmmsg
    static constexpr std::size_t rx_buf_size = 65536;   // one GRO train of datagrams
    static constexpr std::size_t tx_slots = 128;        // datagrams queued before a flush
    static constexpr std::size_t slot_size = tun::max_datagram_len + 64;
    static constexpr std::size_t scratch_slots = 32;
    static constexpr std::size_t max_gso_segments = 64;  // the kernel's UDP_MAX_SEGMENTS
    static constexpr std::size_t max_gso_bytes = 65000;  // below the 64 KiB of one IP packet

    // Binds to `bind` (empty: an ephemeral port of `family`). With `offload`, asks for UDP GRO and
    // checks for UDP GSO (both silently off on kernels without them). Throws tn::Error(io).
    UdpSocket(const std::string& bind, int family, bool offload);
    int fd() const { return fd_.get(); }
    std::string local() const;
    bool gso() const { return gso_; }
    bool gro() const { return gro_; }
    // Marks every datagram with `mark` (SO_MARK, needs CAP_NET_ADMIN): what keeps the tunnel's own
    // datagrams off a full tunnel's policy routes (tn-tun(1), "Routes"). False if the kernel refused.
    bool set_mark(std::uint32_t mark);

    // Receives what is waiting (up to rx_batch buffers, each possibly a GRO train) and splits it into
    // datagrams; returns how many (0 if none). They stay valid until the next receive().
    std::size_t receive();
    // Whether the last receive() emptied the socket (fewer messages than buffers): no need to ask again.
    bool drained() const { return msgs_ < rx_batch; }
    std::uint8_t* rx(std::size_t i) { return views_[i].data; }
    std::size_t rx_len(std::size_t i) const { return views_[i].len; }
    const tun::Endpoint& rx_from(std::size_t i) const { return rx_from_[views_[i].msg]; }

    // A scratch buffer for a reply that must not overwrite the datagram it answers; call
    // take_scratch() when the reply was queued from it (all in use: the queue is flushed first).
    std::uint8_t* scratch() { return scratch_[scratch_used_].data(); }
    void take_scratch();
    // Buffers for packets read from the TUN (headroom for the header, room for the tag).
    std::uint8_t* tx_slot(std::size_t i) { return tx_[i].data(); }

    // Queues a datagram (the bytes must stay valid until flush()). Datagrams of one size to one
    // destination in a row become one GSO send. Flushes when tx_slots are queued.
    void queue(tun::Bytes data, const tun::Endpoint& to);
    // Sends everything queued (sendmmsg); a full socket buffer drops the rest, as a router would.
    void flush();

private:
    struct View {
        std::uint8_t* data;
        std::size_t len;
        std::size_t msg;
    };
    struct TxMsg {
        std::size_t first_iov = 0, count = 0, bytes = 0, seg = 0;
        bool closed = false;  // a shorter datagram ended it
    };
    void send_singly(const TxMsg& m);

    UniqueFd fd_;
    bool gso_ = false, gro_ = false;
    std::vector<std::uint8_t> rx_mem_;
    std::vector<View> views_;
    std::size_t msgs_ = 0;
    std::vector<std::array<std::uint8_t, slot_size>> scratch_, tx_;
    std::size_t scratch_used_ = 0;
    std::array<tun::Endpoint, rx_batch> rx_from_{};
    std::array<mmsghdr, rx_batch> rx_msgs_{};
    std::array<iovec, rx_batch> rx_iov_{};
    std::array<std::array<std::uint8_t, 64>, rx_batch> rx_ctl_{};
    std::array<TxMsg, tx_slots> tx_meta_{};
    std::array<mmsghdr, tx_slots> tx_msgs_{};
    std::array<iovec, tx_slots> tx_iov_{};
    std::array<tun::Endpoint, tx_slots> tx_to_{};
    std::array<std::array<std::uint8_t, 64>, tx_slots> tx_ctl_{};
    std::size_t queued_msgs_ = 0, queued_iovs_ = 0;
};

}  // namespace tn::tuntool
