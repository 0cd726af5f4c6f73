// TSO segmentation (TCP/IPv4 and IPv6, UDP trains of both) and GRO-style coalescing of TCP/IPv4 packets around the TUN's virtio_net_hdr.
#include "tun/offload.hpp"

#include <algorithm>
#include <cstring>

namespace tn::tun {
namespace {

constexpr std::uint8_t proto_tcp = 6, proto_udp = 17;
constexpr std::uint8_t tcp_fin = 0x01, tcp_psh = 0x08, tcp_ack = 0x10, tcp_cwr = 0x80;

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
void put_be16(std::uint8_t* p, std::uint16_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v);
}
std::uint32_t be32(const std::uint8_t* p) { return (std::uint32_t(be16(p)) << 16) | be16(p + 2); }
void put_be32(std::uint8_t* p, std::uint32_t v) {
    put_be16(p, static_cast<std::uint16_t>(v >> 16));
    put_be16(p + 2, static_cast<std::uint16_t>(v));
}
void store_sum(std::uint8_t* at, std::uint16_t v) { std::memcpy(at, &v, 2); }

// The fields of a plain TCP/IPv4 packet that coalescing compares; ok=false for anything else.
struct Tcp4 {
    bool ok = false;
    std::size_t ip_len = 0, hdr_len = 0, payload = 0;
    std::uint32_t seq = 0;
    std::uint8_t flags = 0;
};

bool tcp_checksum_ok(const std::uint8_t* p, std::size_t len, std::size_t ip_len) {
    auto l4 = static_cast<std::uint16_t>(len - ip_len);
    return csum_fold(csum_partial(p + ip_len, l4, pseudo_sum_v4(p, proto_tcp, l4))) == 0xffff;
}

Tcp4 parse_tcp4(const InnerPacket& pk) {
    Tcp4 t;
    const std::uint8_t* p = pk.data;
    // No IP options (ihl 5), not a fragment, the length field exact.
    if (pk.len < 40 || p[0] != 0x45 || p[9] != proto_tcp || be16(p + 2) != pk.len || (be16(p + 6) & 0x3fff) != 0)
        return t;
    t.ip_len = 20;
    std::size_t doff = std::size_t(p[32] >> 4) * 4;
    if (doff < 20 || t.ip_len + doff >= pk.len) return t;  // no payload: nothing to merge
    t.hdr_len = t.ip_len + doff;
    t.payload = pk.len - t.hdr_len;
    t.flags = p[33];
    // Only plain data segments merge: ACK, with PSH allowed on the last one.
    if ((t.flags & ~(tcp_ack | tcp_psh)) != 0 || !(t.flags & tcp_ack)) return t;
    t.seq = be32(p + 24);
    t.ok = true;
    return t;
}

// Same flow and headers apart from length, id, checksums, sequence number and PSH.
bool same_headers(const InnerPacket& a, const Tcp4& ta, const InnerPacket& b, const Tcp4& tb) {
    const std::uint8_t *p = a.data, *q = b.data;
    return ta.hdr_len == tb.hdr_len && p[1] == q[1] && p[8] == q[8] && (p[6] & 0x40) == (q[6] & 0x40) &&
           std::memcmp(p + 12, q + 12, 8) == 0 &&                     // addresses
           std::memcmp(p + 20, q + 20, 4) == 0 &&                     // ports
           std::memcmp(p + 28, q + 28, 4) == 0 &&                     // ack
           std::memcmp(p + 34, q + 34, 2) == 0 &&                     // window
           std::memcmp(p + 40, q + 40, ta.hdr_len - 40) == 0;         // options
}

}  // namespace

VnetHdr read_vnet_hdr(const std::uint8_t* p) {
    VnetHdr h;
    h.flags = p[0];
    h.gso_type = p[1];
    std::memcpy(&h.hdr_len, p + 2, 2);
    std::memcpy(&h.gso_size, p + 4, 2);
    std::memcpy(&h.csum_start, p + 6, 2);
    std::memcpy(&h.csum_offset, p + 8, 2);
    return h;
}

void write_vnet_hdr(const VnetHdr& h, std::uint8_t* p) {
    p[0] = h.flags;
    p[1] = h.gso_type;
    std::memcpy(p + 2, &h.hdr_len, 2);
    std::memcpy(p + 4, &h.gso_size, 2);
    std::memcpy(p + 6, &h.csum_start, 2);
    std::memcpy(p + 8, &h.csum_offset, 2);
}

std::uint64_t csum_partial(const std::uint8_t* p, std::size_t n, std::uint64_t sum) {
    // 32-bit words into a 64-bit accumulator: no carry is lost below 2^32 words.
    while (n >= 16) {
        std::uint32_t w[4];
        std::memcpy(w, p, 16);
        sum += std::uint64_t(w[0]) + w[1] + w[2] + w[3];
        p += 16;
        n -= 16;
    }
    while (n >= 4) {
        std::uint32_t w;
        std::memcpy(&w, p, 4);
        sum += w;
        p += 4;
        n -= 4;
    }
    if (n >= 2) {
        std::uint16_t w;
        std::memcpy(&w, p, 2);
        sum += w;
        p += 2;
        n -= 2;
    }
    if (n) {
        std::uint8_t last[2] = {*p, 0};  // an odd byte is padded with a zero byte after it
        std::uint16_t w;
        std::memcpy(&w, last, 2);
        sum += w;
    }
    return sum;
}

std::uint16_t csum_fold(std::uint64_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(sum);
}

std::uint64_t pseudo_sum_v4(const std::uint8_t* ip, std::uint8_t protocol, std::uint16_t l4_len) {
    std::uint8_t ph[12];
    std::memcpy(ph, ip + 12, 8);
    ph[8] = 0;
    ph[9] = protocol;
    put_be16(ph + 10, l4_len);
    return csum_partial(ph, sizeof ph);
}

std::uint64_t pseudo_sum_v6(const std::uint8_t* ip, std::uint8_t protocol, std::uint16_t l4_len) {
    std::uint8_t ph[40] = {};
    std::memcpy(ph, ip + 8, 32);
    put_be16(ph + 34, l4_len);
    ph[39] = protocol;
    return csum_partial(ph, sizeof ph);
}

void ipv4_header_checksum(std::uint8_t* ip) {
    std::size_t ihl = std::size_t(ip[0] & 0x0f) * 4;
    ip[10] = ip[11] = 0;
    store_sum(ip + 10, static_cast<std::uint16_t>(~csum_fold(csum_partial(ip, ihl))));
}

std::optional<SegmentPlan> plan_segments(const VnetHdr& h, std::span<const std::uint8_t> pkt) {
    SegmentPlan plan;
    const std::uint8_t type = h.gso_type & static_cast<std::uint8_t>(~gso_ecn);
    if (pkt.empty() || pkt.size() > max_super_packet) return std::nullopt;
    if (type == gso_none) {
        if (h.flags & vnet_needs_csum) {
            std::size_t at = std::size_t(h.csum_start) + h.csum_offset;
            if (h.csum_start >= pkt.size() || at + 2 > pkt.size()) return std::nullopt;
            plan.csum = true;
            plan.csum_from = h.csum_start;
            plan.csum_at = at;
        }
        return plan;
    }
    if ((type != gso_tcpv4 && type != gso_tcpv6 && type != gso_udp_l4) || h.gso_size == 0) return std::nullopt;
    const bool udp = type == gso_udp_l4;
    const std::uint8_t* p = pkt.data();
    const bool v6 = (p[0] >> 4) == 6;
    if (type == (v6 ? gso_tcpv4 : gso_tcpv6)) return std::nullopt;
    std::size_t ip_len = 0;
    if (v6) {
        // The fixed header only: a super-packet with extension headers is not one we asked for.
        if (pkt.size() < 48 || p[6] != (udp ? proto_udp : proto_tcp) || be16(p + 4) + 40u != pkt.size()) return std::nullopt;
        ip_len = 40;
    } else {
        if (pkt.size() < 28 || (p[0] >> 4) != 4 || p[9] != (udp ? proto_udp : proto_tcp)) return std::nullopt;
        ip_len = std::size_t(p[0] & 0x0f) * 4;
        if (ip_len < 20 || be16(p + 2) != pkt.size() || (be16(p + 6) & 0x3fff) != 0) return std::nullopt;
    }
    if (pkt.size() < ip_len + (udp ? 8 : 20)) return std::nullopt;
    // hdr_len from the kernel is only a hint: the headers themselves say where the payload starts.
    std::size_t l4 = udp ? 8 : std::size_t(p[ip_len + 12] >> 4) * 4;
    if (l4 < (udp ? 8 : 20) || ip_len + l4 >= pkt.size()) return std::nullopt;
    plan.gso = true;
    plan.udp = udp;
    plan.v6 = v6;
    plan.ecn = (h.gso_type & gso_ecn) != 0;
    plan.ip_len = ip_len;
    plan.hdr_len = ip_len + l4;
    plan.gso_size = h.gso_size;
    std::size_t payload = pkt.size() - plan.hdr_len;
    plan.count = (payload + plan.gso_size - 1) / plan.gso_size;
    return plan;
}

std::size_t write_segment(const SegmentPlan& plan, std::span<const std::uint8_t> pkt, std::size_t k,
                          std::uint8_t* out) {
    if (!plan.gso) {
        std::memcpy(out, pkt.data(), pkt.size());
        if (plan.csum) {
            // The field holds the pseudo-header sum already (a partial checksum): sum on top of it.
            std::uint16_t c = static_cast<std::uint16_t>(
                ~csum_fold(csum_partial(out + plan.csum_from, pkt.size() - plan.csum_from)));
            bool udp = (pkt.size() >= 20 && (out[0] >> 4) == 4 && out[9] == proto_udp) ||
                       (pkt.size() >= 40 && (out[0] >> 4) == 6 && out[6] == proto_udp);
            if (c == 0 && udp) c = 0xffff;  // 0 would mean "no checksum" (and IPv6 forbids that)
            store_sum(out + plan.csum_at, c);
        }
        return pkt.size();
    }
    std::size_t payload = pkt.size() - plan.hdr_len;
    std::size_t off = k * plan.gso_size;
    std::size_t seg = std::min(plan.gso_size, payload - off);
    std::memcpy(out, pkt.data(), plan.hdr_len);
    std::memcpy(out + plan.hdr_len, pkt.data() + plan.hdr_len + off, seg);
    std::size_t total = plan.hdr_len + seg;
    if (plan.v6) {
        put_be16(out + 4, static_cast<std::uint16_t>(total - plan.ip_len));  // no id, no header checksum
    } else {
        put_be16(out + 2, static_cast<std::uint16_t>(total));
        put_be16(out + 4, static_cast<std::uint16_t>(be16(out + 4) + k));  // each segment its own IP id
        ipv4_header_checksum(out);
    }
    std::uint8_t* l4 = out + plan.ip_len;
    auto l4_len = static_cast<std::uint16_t>(total - plan.ip_len);
    auto pseudo = [&](std::uint8_t proto) {
        return plan.v6 ? pseudo_sum_v6(out, proto, l4_len) : pseudo_sum_v4(out, proto, l4_len);
    };
    if (plan.udp) {
        put_be16(l4 + 4, l4_len);
        l4[6] = l4[7] = 0;
        auto c = static_cast<std::uint16_t>(~csum_fold(csum_partial(l4, l4_len, pseudo(proto_udp))));
        store_sum(l4 + 6, c == 0 ? 0xffff : c);  // 0 would mean "no checksum"
        return total;
    }
    put_be32(l4 + 4, static_cast<std::uint32_t>(be32(l4 + 4) + off));
    if (k + 1 < plan.count) l4[13] &= static_cast<std::uint8_t>(~(tcp_fin | tcp_psh));
    if (k > 0) l4[13] &= static_cast<std::uint8_t>(~tcp_cwr);
    l4[16] = l4[17] = 0;
    store_sum(l4 + 16, static_cast<std::uint16_t>(~csum_fold(csum_partial(l4, l4_len, pseudo(proto_tcp)))));
    return total;
}

void coalesce(std::span<InnerPacket> pkts, std::vector<TunGroup>& out, std::size_t max_bytes,
              std::size_t max_segments) {
    out.clear();
    std::size_t i = 0;
    while (i < pkts.size()) {
        TunGroup g;
        g.first = i;
        g.bytes = pkts[i].len;
        Tcp4 head = parse_tcp4(pkts[i]);
        std::size_t j = i + 1;
        if (head.ok && !(head.flags & tcp_psh) && tcp_checksum_ok(pkts[i].data, pkts[i].len, head.ip_len)) {
            std::uint32_t next_seq = head.seq + static_cast<std::uint32_t>(head.payload);
            bool psh = false;
            for (; j < pkts.size() && j - i < max_segments; ++j) {
                Tcp4 t = parse_tcp4(pkts[j]);
                if (!t.ok || t.seq != next_seq || t.payload > head.payload || g.bytes + t.payload > max_bytes ||
                    !same_headers(pkts[i], head, pkts[j], t) || !tcp_checksum_ok(pkts[j].data, pkts[j].len, t.ip_len))
                    break;
                g.bytes += t.payload;
                next_seq += static_cast<std::uint32_t>(t.payload);
                psh = (t.flags & tcp_psh) != 0;
                if (psh || t.payload < head.payload) {  // a short or pushed segment ends the run
                    ++j;
                    break;
                }
            }
            g.count = j - i;
            if (g.count > 1) {
                std::uint8_t* p = pkts[i].data;
                put_be16(p + 2, static_cast<std::uint16_t>(g.bytes));
                ipv4_header_checksum(p);
                if (psh) p[33] |= tcp_psh;
                auto l4 = static_cast<std::uint16_t>(g.bytes - head.ip_len);
                // A partial checksum: the kernel (or the segmenter after it) adds the data's sum.
                store_sum(p + 36, csum_fold(pseudo_sum_v4(p, proto_tcp, l4)));
                g.hdr.flags = vnet_needs_csum;
                g.hdr.gso_type = gso_tcpv4;
                g.hdr.hdr_len = static_cast<std::uint16_t>(head.hdr_len);
                g.hdr.gso_size = static_cast<std::uint16_t>(head.payload);
                g.hdr.csum_start = static_cast<std::uint16_t>(head.ip_len);
                g.hdr.csum_offset = 16;
                g.skip = head.hdr_len;
            }
        }
        if (g.count == 1) j = i + 1;
        out.push_back(g);
        i = j;
    }
}

}  // namespace tn::tun
