// Unit tests of lib/tun/offload: TSO segmentation and coalescing, checksums checked against a
// byte-by-byte RFC 1071 reference, odd lengths, the short last segment, malformed headers dropped.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "tun/offload.hpp"

using namespace tn::tun;
using Buf = std::vector<std::uint8_t>;

namespace {

// RFC 1071 the slow way: big-endian 16-bit words, end-around carry.
std::uint16_t ref_sum(const Buf& b, std::size_t from, std::size_t to, std::uint32_t sum = 0) {
    for (std::size_t i = from; i < to; i += 2) {
        std::uint32_t w = std::uint32_t(b[i]) << 8;
        if (i + 1 < to) w |= b[i + 1];
        sum += w;
        while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<std::uint16_t>(sum);
}
std::uint16_t be16(const Buf& b, std::size_t at) { return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]); }
std::uint32_t be32(const Buf& b, std::size_t at) { return (std::uint32_t(be16(b, at)) << 16) | be16(b, at + 2); }

bool ip_checksum_ok(const Buf& p) { return ref_sum(p, 0, 20) == 0xffff; }
// The L4 checksum over the pseudo-header and the segment, by the reference.
bool l4_checksum_ok(const Buf& p, std::uint8_t proto) {
    std::size_t l4 = p.size() - 20;
    std::uint32_t pseudo = be16(p, 12) + be16(p, 14) + be16(p, 16) + be16(p, 18) + proto + std::uint32_t(l4);
    return ref_sum(p, 20, p.size(), pseudo) == 0xffff;
}

// A TCP/IPv4 packet with the timestamp option (32-byte TCP header); its TCP checksum field holds
// the pseudo-header sum, as the kernel leaves it for a partial checksum, unless `full`.
Buf tcp_packet(std::size_t payload, std::uint32_t seq, std::uint8_t flags, bool full = false,
               std::uint8_t first_byte = 0) {
    Buf p(52 + payload);
    p[0] = 0x45;
    p[2] = static_cast<std::uint8_t>(p.size() >> 8);
    p[3] = static_cast<std::uint8_t>(p.size());
    p[4] = 0x12, p[5] = 0x34;  // id
    p[6] = 0x40;               // DF
    p[8] = 64;
    p[9] = 6;
    std::uint8_t addrs[8] = {10, 99, 0, 2, 10, 99, 0, 1};
    std::memcpy(&p[12], addrs, 8);
    p[20] = 0xa0, p[21] = 0x01, p[22] = 0x14, p[23] = 0x51;  // ports
    for (int i = 0; i < 4; ++i) p[24 + i] = static_cast<std::uint8_t>(seq >> (24 - 8 * i));
    p[28] = 0x11, p[29] = 0x22, p[30] = 0x33, p[31] = 0x44;  // ack
    p[32] = 0x80;  // doff 8
    p[33] = flags;
    p[34] = 0x01, p[35] = 0xf5;  // window
    p[40] = 1, p[41] = 1, p[42] = 8, p[43] = 10;  // NOP NOP TS
    for (int i = 44; i < 52; ++i) p[i] = static_cast<std::uint8_t>(i);
    for (std::size_t i = 0; i < payload; ++i) p[52 + i] = static_cast<std::uint8_t>(first_byte + i * 7 + 3);
    std::uint16_t ip = static_cast<std::uint16_t>(~ref_sum(p, 0, 20));
    p[10] = static_cast<std::uint8_t>(ip >> 8), p[11] = static_cast<std::uint8_t>(ip);
    std::size_t l4 = p.size() - 20;
    std::uint32_t pseudo = be16(p, 12) + be16(p, 14) + be16(p, 16) + be16(p, 18) + 6 + std::uint32_t(l4);
    std::uint16_t c = full ? static_cast<std::uint16_t>(~ref_sum(p, 20, p.size(), pseudo)) : ref_sum(p, 0, 0, pseudo);
    p[36] = static_cast<std::uint8_t>(c >> 8), p[37] = static_cast<std::uint8_t>(c);
    return p;
}

VnetHdr tso(std::uint16_t mss) {
    VnetHdr h;
    h.flags = vnet_needs_csum;
    h.gso_type = gso_tcpv4;
    h.hdr_len = 52;
    h.gso_size = mss;
    h.csum_start = 20;
    h.csum_offset = 16;
    return h;
}

std::vector<Buf> segment_all(const VnetHdr& h, const Buf& pkt) {
    auto plan = plan_segments(h, pkt);
    REQUIRE(plan);
    std::vector<Buf> out;
    for (std::size_t k = 0; k < plan->count; ++k) {
        Buf seg(pkt.size() + 64);
        seg.resize(write_segment(*plan, pkt, k, seg.data()));
        out.push_back(seg);
    }
    return out;
}

}  // namespace

TEST_CASE("csum_partial matches the RFC 1071 reference for every length and alignment") {
    Buf b(301);
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(i * 37 + 11);
    for (std::size_t n : {0u, 1u, 2u, 3u, 15u, 16u, 17u, 64u, 299u, 300u}) {
        std::uint16_t mine = csum_fold(csum_partial(b.data(), n));
        std::uint16_t ref = ref_sum(b, 0, n);
        std::uint8_t bytes[2];
        std::memcpy(bytes, &mine, 2);  // the native-order sum, stored, reads as the reference
        CHECK(((bytes[0] << 8) | bytes[1]) == ref);
    }
}

TEST_CASE("vnet header round-trips") {
    std::uint8_t raw[vnet_hdr_len];
    write_vnet_hdr(tso(1368), raw);
    auto h = read_vnet_hdr(raw);
    CHECK(h.gso_type == gso_tcpv4);
    CHECK(h.gso_size == 1368);
    CHECK(h.csum_offset == 16);
}

TEST_CASE("a TSO super-packet splits into MSS segments with valid checksums and a short last one") {
    const std::size_t mss = 1368;
    for (std::size_t payload : {std::size_t(1), mss - 1, mss, mss + 1, 3 * mss, 47 * mss + 333, std::size_t(65483)}) {
        Buf super = tcp_packet(payload, 0xfffff000u, 0x18 /* ACK|PSH */);
        auto segs = segment_all(tso(mss), super);
        REQUIRE(segs.size() == (payload + mss - 1) / mss);
        Buf joined;
        for (std::size_t k = 0; k < segs.size(); ++k) {
            const Buf& s = segs[k];
            bool last = k + 1 == segs.size();
            CHECK(s.size() == 52 + (last ? payload - k * mss : mss));
            CHECK(be16(s, 2) == s.size());
            CHECK(be16(s, 4) == static_cast<std::uint16_t>(0x1234 + k));
            CHECK(ip_checksum_ok(s));
            CHECK(l4_checksum_ok(s, 6));
            CHECK(be32(s, 24) == static_cast<std::uint32_t>(0xfffff000u + k * mss));  // wraps past 2^32
            CHECK(s[33] == (last ? 0x18 : 0x10));  // PSH on the last segment only
            joined.insert(joined.end(), s.begin() + 52, s.end());
        }
        CHECK(Buf(super.begin() + 52, super.end()) == joined);
    }
}

namespace {
// A UDP/IPv4 GSO train as a socket with UDP_SEGMENT hands it to the TUN (pseudo-header checksum).
Buf udp_train(std::size_t payload) {
    Buf p(28 + payload);
    p[0] = 0x45;
    p[2] = static_cast<std::uint8_t>(p.size() >> 8);
    p[3] = static_cast<std::uint8_t>(p.size());
    p[4] = 0x77;
    p[8] = 64;
    p[9] = 17;
    p[12] = 10, p[13] = 99, p[15] = 2, p[16] = 10, p[17] = 99, p[19] = 1;
    p[20] = 0x13, p[21] = 0x88, p[22] = 0x00, p[23] = 0x35;
    p[24] = static_cast<std::uint8_t>((p.size() - 20) >> 8);
    p[25] = static_cast<std::uint8_t>(p.size() - 20);
    for (std::size_t i = 0; i < payload; ++i) p[28 + i] = static_cast<std::uint8_t>(i * 13 + 1);
    std::uint16_t ip = static_cast<std::uint16_t>(~ref_sum(p, 0, 20));
    p[10] = static_cast<std::uint8_t>(ip >> 8), p[11] = static_cast<std::uint8_t>(ip);
    return p;
}
}  // namespace

TEST_CASE("a UDP GSO train (USO) splits into datagrams with their own lengths and checksums") {
    for (std::size_t payload : {std::size_t(1), std::size_t(1200), std::size_t(5 * 1200 + 7)}) {
        Buf train = udp_train(payload);
        VnetHdr h;
        h.flags = vnet_needs_csum;
        h.gso_type = gso_udp_l4;
        h.hdr_len = 28;
        h.gso_size = 1200;
        h.csum_start = 20;
        h.csum_offset = 6;
        auto segs = segment_all(h, train);
        REQUIRE(segs.size() == (payload + 1199) / 1200);
        Buf joined;
        for (std::size_t k = 0; k < segs.size(); ++k) {
            const Buf& s = segs[k];
            CHECK(be16(s, 2) == s.size());
            CHECK(be16(s, 24) == s.size() - 20);  // the UDP length
            CHECK(ip_checksum_ok(s));
            CHECK(l4_checksum_ok(s, 17));
            CHECK(be16(s, 26) != 0);
            joined.insert(joined.end(), s.begin() + 28, s.end());
        }
        CHECK(Buf(train.begin() + 28, train.end()) == joined);
    }
    VnetHdr h;
    h.gso_type = gso_udp_l4;
    h.gso_size = 1200;
    CHECK_FALSE(plan_segments(h, tcp_packet(3000, 1, 0x10)));  // USO on a TCP packet
    CHECK_FALSE(plan_segments(h, udp_train(0)));  // no payload
}

TEST_CASE("FIN stays on the last segment and CWR on the first") {
    Buf super = tcp_packet(3000, 1, 0x80 | 0x10 | 0x01);
    auto h = tso(1000);
    h.gso_type |= gso_ecn;
    auto segs = segment_all(h, super);
    REQUIRE(segs.size() == 3);
    CHECK(segs[0][33] == (0x80 | 0x10));
    CHECK(segs[1][33] == 0x10);
    CHECK(segs[2][33] == (0x10 | 0x01));
}

TEST_CASE("a plain packet with a partial checksum gets it completed") {
    SECTION("TCP, odd length") {
        Buf p = tcp_packet(77, 5, 0x10);
        VnetHdr h;
        h.flags = vnet_needs_csum;
        h.csum_start = 20;
        h.csum_offset = 16;
        auto segs = segment_all(h, p);
        REQUIRE(segs.size() == 1);
        CHECK(l4_checksum_ok(segs[0], 6));
    }
    SECTION("UDP") {
        Buf p(20 + 8 + 33);
        p[0] = 0x45, p[3] = static_cast<std::uint8_t>(p.size()), p[8] = 64, p[9] = 17;
        p[12] = 10, p[15] = 2, p[16] = 10, p[19] = 1;
        p[24] = 0, p[25] = static_cast<std::uint8_t>(p.size() - 20);
        for (std::size_t i = 28; i < p.size(); ++i) p[i] = static_cast<std::uint8_t>(i);
        std::uint16_t c = ref_sum(p, 0, 0, be16(p, 12) + be16(p, 14) + be16(p, 16) + be16(p, 18) + 17 + 41);
        p[26] = static_cast<std::uint8_t>(c >> 8), p[27] = static_cast<std::uint8_t>(c);
        VnetHdr h;
        h.flags = vnet_needs_csum;
        h.csum_start = 20;
        h.csum_offset = 6;
        auto segs = segment_all(h, p);
        CHECK(l4_checksum_ok(segs[0], 17));
    }
    SECTION("no flag: bytes untouched") {
        Buf p = tcp_packet(10, 5, 0x10, true);
        auto segs = segment_all(VnetHdr{}, p);
        CHECK(segs[0] == p);
    }
}

TEST_CASE("malformed offload headers and packets are dropped") {
    Buf good = tcp_packet(4000, 1, 0x10);
    auto h = tso(1368);
    CHECK(plan_segments(h, good));
    auto bad = h;
    bad.gso_size = 0;
    CHECK_FALSE(plan_segments(bad, good));
    bad = h;
    bad.gso_type = 3;  // UFO (IP fragments): never asked for
    CHECK_FALSE(plan_segments(bad, good));
    bad = h;
    bad.gso_type = 4;  // TSO6 on an IPv4 packet
    CHECK_FALSE(plan_segments(bad, good));
    CHECK_FALSE(plan_segments(h, Buf(good.begin(), good.begin() + 51)));   // truncated headers
    CHECK_FALSE(plan_segments(h, Buf(good.begin(), good.end() - 1)));      // length field disagrees
    CHECK_FALSE(plan_segments(h, Buf(good.begin(), good.begin() + 52)));   // no payload
    Buf v6 = good;
    v6[0] = 0x65;
    CHECK_FALSE(plan_segments(h, v6));
    Buf udp = good;
    udp[9] = 17;
    CHECK_FALSE(plan_segments(h, udp));
    Buf doff = good;
    doff[32] = 0x40;  // data offset 4 words: below the minimum
    CHECK_FALSE(plan_segments(h, doff));
    Buf frag = good;
    frag[6] = 0x20;  // more fragments
    CHECK_FALSE(plan_segments(h, frag));
    VnetHdr csum;
    csum.flags = vnet_needs_csum;
    csum.csum_start = static_cast<std::uint16_t>(good.size());
    CHECK_FALSE(plan_segments(csum, good));
    csum.csum_start = 20;
    csum.csum_offset = static_cast<std::uint16_t>(good.size() - 21);  // the field would cross the end
    CHECK_FALSE(plan_segments(csum, good));
    CHECK_FALSE(plan_segments(VnetHdr{}, Buf{}));
}

namespace {
std::vector<InnerPacket> views(std::vector<Buf>& bufs) {
    std::vector<InnerPacket> v;
    for (auto& b : bufs) v.push_back({b.data(), b.size()});
    return v;
}
Buf flatten(const std::vector<InnerPacket>& v, const TunGroup& g) {
    Buf out(v[g.first].data, v[g.first].data + v[g.first].len);
    for (std::size_t i = g.first + 1; i < g.first + g.count; ++i) out.insert(out.end(), v[i].data + g.skip, v[i].data + v[i].len);
    return out;
}
}  // namespace

TEST_CASE("segments of one flow coalesce back into the super-packet they came from") {
    const std::size_t mss = 1368;
    Buf super = tcp_packet(20 * mss + 555, 77, 0x18);
    auto segs = segment_all(tso(mss), super);
    auto v = views(segs);
    std::vector<TunGroup> groups;
    coalesce(v, groups);
    REQUIRE(groups.size() == 1);
    CHECK(groups[0].count == segs.size());
    CHECK(groups[0].hdr.gso_type == gso_tcpv4);
    CHECK(groups[0].hdr.gso_size == mss);
    CHECK(groups[0].hdr.hdr_len == 52);
    Buf merged = flatten(v, groups[0]);
    CHECK(merged.size() == groups[0].bytes);
    CHECK(merged == super);  // same headers, PSH from the last, the partial checksum the kernel expects
    // And it splits again into the same segments: the two directions agree.
    CHECK(segment_all(groups[0].hdr, merged) == segment_all(tso(mss), super));
}

TEST_CASE("coalescing stops at anything that is not the next segment of the same flow") {
    auto run = [](std::vector<Buf> bufs, std::size_t max_bytes = max_super_packet) {
        auto v = views(bufs);
        std::vector<TunGroup> groups;
        coalesce(v, groups, max_bytes);
        std::vector<std::size_t> counts;
        std::size_t next = 0;
        for (auto& g : groups) {
            CHECK(g.first == next);  // in order, every packet exactly once
            next += g.count;
            counts.push_back(g.count);
        }
        CHECK(next == bufs.size());
        return counts;
    };
    using C = std::vector<std::size_t>;
    CHECK(run({tcp_packet(100, 0, 0x10, true), tcp_packet(100, 100, 0x10, true), tcp_packet(60, 200, 0x18, true)}) ==
          C{3});
    CHECK(run({tcp_packet(100, 0, 0x10, true), tcp_packet(100, 150, 0x10, true)}) == C{1, 1});  // a gap
    CHECK(run({tcp_packet(100, 0, 0x10, true), tcp_packet(60, 100, 0x10, true), tcp_packet(60, 160, 0x10, true)}) ==
          C{2, 1});  // short ends a run
    CHECK(run({tcp_packet(100, 0, 0x18, true), tcp_packet(100, 100, 0x10, true)}) == C{1, 1});  // PSH first
    CHECK(run({tcp_packet(100, 0, 0x10, true), tcp_packet(100, 100, 0x11, true)}) == C{1, 1});  // FIN
    CHECK(run({tcp_packet(100, 0, 0x10, true), tcp_packet(200, 100, 0x10, true)}) == C{1, 1});  // longer
    Buf other = tcp_packet(100, 100, 0x10, true);
    other[21] = 0x02;  // another source port
    std::uint16_t c = static_cast<std::uint16_t>(be16(other, 36) - 1);  // keep its checksum valid
    other[36] = static_cast<std::uint8_t>(c >> 8), other[37] = static_cast<std::uint8_t>(c);
    REQUIRE(l4_checksum_ok(other, 6));
    CHECK(run({tcp_packet(100, 0, 0x10, true), other}) == C{1, 1});
    Buf corrupt = tcp_packet(100, 100, 0x10, true);
    corrupt[60] ^= 1;  // a bad checksum is left alone for the kernel to drop
    CHECK(run({tcp_packet(100, 0, 0x10, true), corrupt}) == C{1, 1});
    Buf udp(60, 0);
    udp[0] = 0x45, udp[3] = 60, udp[9] = 17;
    CHECK(run({udp, tcp_packet(100, 0, 0x10, true), tcp_packet(100, 100, 0x10, true), udp}) == C{1, 2, 1});
    // The size cap: 52 + 3*100 = 352 fits, a fourth segment would not.
    CHECK(run({tcp_packet(100, 0, 0x10, true), tcp_packet(100, 100, 0x10, true), tcp_packet(100, 200, 0x10, true),
               tcp_packet(100, 300, 0x10, true)},
              400) == C{3, 1});
}

namespace {
// The IPv6 form of a TCP or UDP packet made above: a fixed 40-byte header in place of the IPv4 one,
// the L4 checksum field reset to the IPv6 pseudo-header sum (a partial checksum, as the kernel leaves it).
Buf as_ipv6(const Buf& v4, std::size_t l4_csum_at) {
    Buf p(40);
    p[0] = 0x60;
    std::size_t l4 = v4.size() - 20;
    p[4] = static_cast<std::uint8_t>(l4 >> 8), p[5] = static_cast<std::uint8_t>(l4);
    p[6] = v4[9];
    p[7] = 64;
    p[8] = 0xfd, p[9] = 0x00, p[23] = 2;   // fd00::2
    p[24] = 0xfd, p[25] = 0x00, p[39] = 1;  // fd00::1
    p.insert(p.end(), v4.begin() + 20, v4.end());
    std::uint32_t pseudo = ref_sum(p, 8, 40) + std::uint32_t(l4) + v4[9];
    std::uint16_t c = ref_sum(p, 0, 0, pseudo);
    p[40 + l4_csum_at] = static_cast<std::uint8_t>(c >> 8), p[41 + l4_csum_at] = static_cast<std::uint8_t>(c);
    return p;
}
bool l4_checksum6_ok(const Buf& p) {
    std::uint32_t pseudo = ref_sum(p, 8, 40) + std::uint32_t(p.size() - 40) + p[6];
    return ref_sum(p, 40, p.size(), pseudo) == 0xffff;
}
}  // namespace

TEST_CASE("IPv6 super-packets (TSO6 and USO6) split with IPv6 lengths and pseudo-header checksums") {
    const std::size_t mss = 1348;
    Buf super = as_ipv6(tcp_packet(5 * mss + 11, 7, 0x18), 16);
    VnetHdr h = tso(mss);
    h.gso_type = gso_tcpv6;
    h.csum_start = 40;
    auto segs = segment_all(h, super);
    REQUIRE(segs.size() == 6);
    Buf joined;
    for (std::size_t k = 0; k < segs.size(); ++k) {
        const Buf& s = segs[k];
        CHECK(be16(s, 4) == s.size() - 40);
        CHECK(l4_checksum6_ok(s));
        CHECK(be32(s, 44) == 7 + k * mss);
        CHECK(s[53] == (k + 1 == segs.size() ? 0x18 : 0x10));
        joined.insert(joined.end(), s.begin() + 72, s.end());
    }
    CHECK(Buf(super.begin() + 72, super.end()) == joined);

    Buf train = as_ipv6(udp_train(3 * 1200 + 5), 6);
    VnetHdr u;
    u.flags = vnet_needs_csum;
    u.gso_type = gso_udp_l4;
    u.gso_size = 1200;
    u.csum_start = 40;
    u.csum_offset = 6;
    segs = segment_all(u, train);
    REQUIRE(segs.size() == 4);
    for (auto& s : segs) {
        CHECK(be16(s, 4) == s.size() - 40);
        CHECK(be16(s, 44) == s.size() - 40);  // the UDP length
        CHECK(l4_checksum6_ok(s));
    }
    // A TCPv4 type on an IPv6 packet, a length field that lies, or an extension header: dropped.
    CHECK_FALSE(plan_segments(tso(mss), super));
    Buf lying = super;
    lying[5] ^= 1;
    CHECK_FALSE(plan_segments(h, lying));
    Buf ext = super;
    ext[6] = 0;  // hop-by-hop options
    CHECK_FALSE(plan_segments(h, ext));
}
