// TUN offloads without I/O: the virtio_net_hdr a TUN opened with IFF_VNET_HDR puts in front of each
// packet, splitting a TCP super-packet (TSO) or a UDP GSO train (USO) into MTU-sized packets with
// their checksums, and the
// reverse, coalescing consecutive segments of one TCP flow into a super-packet (GRO) for one write.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace tn::tun {

// struct virtio_net_hdr (linux/virtio_net.h), fields in host order as the TUN uses them by default.
inline constexpr std::size_t vnet_hdr_len = 10;
inline constexpr std::uint8_t vnet_needs_csum = 1;
inline constexpr std::uint8_t gso_none = 0, gso_tcpv4 = 1, gso_tcpv6 = 4, gso_udp_l4 = 5, gso_ecn = 0x80;
// The largest packet one TUN read can return with TSO on: an IPv4 packet of at most 64 KiB.
inline constexpr std::size_t max_super_packet = 65535;

struct VnetHdr {
    std::uint8_t flags = 0;
    std::uint8_t gso_type = gso_none;
    std::uint16_t hdr_len = 0;
    std::uint16_t gso_size = 0;
    std::uint16_t csum_start = 0;
    std::uint16_t csum_offset = 0;
};
VnetHdr read_vnet_hdr(const std::uint8_t* p);
void write_vnet_hdr(const VnetHdr& h, std::uint8_t* p);

// Internet checksum (RFC 1071) pieces. Sums are kept in the byte order of memory, so a folded,
// complemented result is stored with memcpy and adding sums of even-length pieces is valid.
std::uint64_t csum_partial(const std::uint8_t* p, std::size_t n, std::uint64_t sum = 0);
std::uint16_t csum_fold(std::uint64_t sum);
// The IPv4 pseudo-header (src, dst, protocol, L4 length) of the TCP/UDP checksum.
std::uint64_t pseudo_sum_v4(const std::uint8_t* ip_header, std::uint8_t protocol, std::uint16_t l4_len);
// The IPv6 one (source, destination, 32-bit L4 length, next header) of a packet without extension headers.
std::uint64_t pseudo_sum_v6(const std::uint8_t* ip_header, std::uint8_t protocol, std::uint16_t l4_len);
// Recomputes the IPv4 header checksum in place.
void ipv4_header_checksum(std::uint8_t* ip);

// How one packet read from the TUN (after its virtio_net_hdr) becomes plain IP packets.
struct SegmentPlan {
    std::size_t count = 1;       // packets it yields
    std::size_t hdr_len = 0;     // IP + TCP header bytes repeated in every segment (GSO only)
    std::size_t ip_len = 0;      // IP header bytes (GSO only)
    std::size_t gso_size = 0;    // payload bytes per segment but the last (GSO only)
    bool gso = false;
    bool udp = false;            // USO: UDP datagrams, each with its own UDP header
    bool v6 = false;             // an IPv6 super-packet (fixed header only)
    bool ecn = false;            // CWR stays on the first segment only
    bool csum = false;           // complete the checksum at csum_at, summing from csum_from
    std::size_t csum_from = 0, csum_at = 0;
};
// Validates header and packet; nullopt means drop (malformed, or an offload we did not ask for).
std::optional<SegmentPlan> plan_segments(const VnetHdr& h, std::span<const std::uint8_t> pkt);
// Writes packet `k` of the plan to `out` (room for hdr_len + gso_size, or pkt.size() when not GSO),
// with complete IP and TCP (or UDP) checksums. Returns its length.
std::size_t write_segment(const SegmentPlan& plan, std::span<const std::uint8_t> pkt, std::size_t k,
                          std::uint8_t* out);

// Receive side: decrypted IPv4 packets in arrival order, grouped for the TUN.
struct InnerPacket {
    std::uint8_t* data;
    std::size_t len;
};
struct TunGroup {
    std::size_t first = 0, count = 1;
    VnetHdr hdr{};            // gso_none for a lone packet
    std::size_t skip = 0;     // header bytes of members after the first that are not written
    std::size_t bytes = 0;    // the resulting packet's length (without the virtio_net_hdr)
};
// Groups runs of adjacent TCP segments of one flow (same addresses, ports, ack, window, options;
// consecutive sequence numbers; all but the last exactly as long as the first; valid checksums)
// into GSO super-packets of at most `max_bytes`. A group's first packet gets the merged IP length,
// IP checksum, PSH of the last member and the pseudo-header checksum of a partial checksum, in place.
// Every packet lands in exactly one group, in order.
void coalesce(std::span<InnerPacket> pkts, std::vector<TunGroup>& out, std::size_t max_bytes = max_super_packet,
              std::size_t max_segments = 64);

}  // namespace tn::tun
