// The packet path between the TUN and the UDP socket: reading (and cutting up) TUN super-packets
// into the UDP send slots, and writing decrypted packets back, coalesced, with one writev per group.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include "io_tun.hpp"
#include "io_udp.hpp"
#include "tun/offload.hpp"

namespace tn::tuntool {

// Whether to use TUN offloads and UDP GSO/GRO: on unless TN_TUN_OFFLOAD=0 (a diagnostic switch
// to compare the two paths, documented in tn-tun(1)).
bool offload_wanted();

class TunReader {
public:
    explicit TunReader(TunDevice& tun) : tun_(tun), buf_(tun::vnet_hdr_len + tun::max_super_packet) {}

    // Reads from the TUN until `max_packets` IP packets were sealed (a read may hold up to 64 with
    // offloads: the last one is finished) or the TUN is empty; every IP packet is put at
    // udp.tx_slot(k) + transport_header_len and handed to seal(slot, len), which seals it and queues
    // it on `udp`. Flushes whenever the slots run out and at the end. True if the TUN may hold more.
    template <class Seal>
    bool pump(UdpSocket& udp, std::size_t max_packets, Seal&& seal) {
        std::size_t slot = 0;
        auto next_slot = [&] {
            if (slot == UdpSocket::tx_slots) {
                udp.flush();  // the queue points into the slots: send before reusing them
                slot = 0;
            }
            return udp.tx_slot(slot++);
        };
        std::size_t sealed = 0;
        bool more = false;
        while (!(more = sealed >= max_packets)) {
            if (!tun_.offload()) {
                std::uint8_t* s = next_slot();
                std::size_t len = tun_.read(s + tun::transport_header_len, tun::max_inner_len);
                if (!len) break;
                seal(s, len);
                ++sealed;
                continue;
            }
            std::size_t n = tun_.read(buf_.data(), buf_.size());
            if (!n) break;
            tun::SegmentPlan plan;
            if (!split(n, plan)) {
                ++sealed;  // dropped, but work done all the same
                continue;
            }
            tun::Bytes pkt(buf_.data() + tun::vnet_hdr_len, n - tun::vnet_hdr_len);
            for (std::size_t k = 0; k < plan.count; ++k) {
                std::uint8_t* s = next_slot();
                seal(s, tun::write_segment(plan, pkt, k, s + tun::transport_header_len));
            }
            sealed += plan.count;
        }
        udp.flush();
        return more;
    }
    // Packets the kernel gave us that we could not use (malformed offload header, too big).
    std::uint64_t dropped() const { return dropped_; }

private:
    bool split(std::size_t n, tun::SegmentPlan& plan);
    TunDevice& tun_;
    std::vector<std::uint8_t> buf_;
    std::uint64_t dropped_ = 0;
};

class TunWriter {
public:
    explicit TunWriter(TunDevice& tun) : tun_(tun) {
        pkts_.reserve(UdpSocket::rx_batch * UdpSocket::max_gso_segments);
        iov_.reserve(2 * UdpSocket::max_gso_segments);
    }
    // Takes a decrypted packet; its bytes (inside the UDP receive buffers, which coalescing may
    // rewrite) must stay valid until flush().
    void add(tun::Bytes pkt) {
        if (!pkt.empty()) pkts_.push_back({const_cast<std::uint8_t*>(pkt.data()), pkt.size()});
    }
    // Writes what was added: runs of one TCP flow as one super-packet when offloads are on.
    void flush();
    std::uint64_t errors() const { return errors_; }

private:
    void write(const iovec* iov, int n);
    TunDevice& tun_;
    std::vector<tun::InnerPacket> pkts_;
    std::vector<tun::TunGroup> groups_;
    std::vector<iovec> iov_;
    std::uint8_t hdr_[tun::vnet_hdr_len]{};
    std::uint64_t errors_ = 0;
};

}  // namespace tn::tuntool
