// Encoding and decoding of tn-tun datagrams and the pushed-config message; every length is checked.
#include "tun/wire.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "base/error.hpp"
#include "base/strings.hpp"

namespace tn::tun {

std::optional<Classified> classify(std::span<const std::uint8_t> d) {
    if (d.size() < 4 || d.size() > max_datagram_len) return std::nullopt;
    // Reserved bytes must be zero: a future version that uses them is rejected, not misread. A
    // response's first one names the suite (revision 5): the handshake checks it against what was offered.
    bool suite_byte = d[0] == static_cast<std::uint8_t>(MsgType::response);
    if ((d[1] != 0 && !suite_byte) || d[2] != 0 || d[3] != 0) return std::nullopt;
    switch (static_cast<MsgType>(d[0])) {
    case MsgType::initiation:
        if (d.size() != initiation_len && d.size() != initiation_mac2_len) return std::nullopt;
        return Classified{MsgType::initiation};
    case MsgType::cookie:
        if (d.size() != cookie_len) return std::nullopt;
        return Classified{MsgType::cookie, get_u32(d.data() + cookie_off::receiver)};
    case MsgType::response:
        if (d.size() != response_len) return std::nullopt;
        return Classified{MsgType::response, get_u32(d.data() + resp_off::receiver)};
    case MsgType::data:
    case MsgType::push:
        if (d.size() < transport_header_len + 16) return std::nullopt;
        return Classified{static_cast<MsgType>(d[0]), get_u32(d.data() + 4), get_u64(d.data() + 8)};
    }
    return std::nullopt;
}

void write_transport_header(std::uint8_t* out, MsgType t, std::uint32_t receiver, std::uint64_t counter) {
    out[0] = static_cast<std::uint8_t>(t);
    out[1] = out[2] = out[3] = 0;
    put_u32(out + 4, receiver);
    put_u64(out + 8, counter);
}

// version(1) prefix(1) mtu(2) address(4) ndns(1) dns(4*n) nroutes(1) routes((4+1)*n), then in
// version 2: prefix6(1) address6(16) ndns6(1) dns6(16*n) nroutes6(1) routes6((16+1)*n)
std::vector<std::uint8_t> encode_push(const PushConfig& c) {
    if (c.dns.size() > max_push_dns || c.routes.size() > max_push_routes || c.dns6.size() > max_push_dns ||
        c.routes6.size() > max_push_routes)
        throw Error(ExitCode::config, "too many dns servers or routes to push");
    std::size_t v6 = c.has_v6() ? 19 + 16 * c.dns6.size() + 17 * c.routes6.size() : 0;
    std::vector<std::uint8_t> b(10 + 4 * c.dns.size() + 5 * c.routes.size() + v6);
    std::uint8_t* p = b.data();
    *p++ = c.has_v6() ? 2 : 1;
    *p++ = c.prefix;
    *p++ = static_cast<std::uint8_t>(c.mtu >> 8);
    *p++ = static_cast<std::uint8_t>(c.mtu);
    put_u32(p, c.address);
    p += 4;
    *p++ = static_cast<std::uint8_t>(c.dns.size());
    for (auto d : c.dns) put_u32(p, d), p += 4;
    *p++ = static_cast<std::uint8_t>(c.routes.size());
    for (auto& r : c.routes) put_u32(p, r.addr), p[4] = r.prefix, p += 5;
    if (!c.has_v6()) return b;
    *p++ = c.prefix6;
    p = std::copy(c.address6.begin(), c.address6.end(), p);
    *p++ = static_cast<std::uint8_t>(c.dns6.size());
    for (auto& d : c.dns6) p = std::copy(d.begin(), d.end(), p);
    *p++ = static_cast<std::uint8_t>(c.routes6.size());
    for (auto& r : c.routes6) p = std::copy(r.addr.begin(), r.addr.end(), p), *p++ = r.prefix;
    return b;
}

namespace {
// The IPv6 part of a version 2 push from offset i; false on any length or range problem.
bool decode_push6(std::span<const std::uint8_t> b, std::size_t i, PushConfig& c) {
    auto ip6 = [&](std::size_t at) {
        Ip6 a;
        std::copy(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + 16), a.begin());
        return a;
    };
    if (b.size() < i + 18) return false;
    c.prefix6 = b[i++];
    if (c.prefix6 < 1 || c.prefix6 > 128) return false;
    c.address6 = ip6(i);
    i += 16;
    std::size_t ndns = b[i++];
    if (ndns > max_push_dns || b.size() < i + 16 * ndns + 1) return false;
    for (std::size_t k = 0; k < ndns; ++k, i += 16) c.dns6.push_back(ip6(i));
    std::size_t nr = b[i++];
    if (nr > max_push_routes || b.size() != i + 17 * nr) return false;
    for (std::size_t k = 0; k < nr; ++k, i += 17) {
        if (b[i + 16] > 128) return false;
        c.routes6.push_back(Route6{ip6(i), b[i + 16]});
    }
    return true;
}
}  // namespace

std::optional<PushConfig> decode_push(std::span<const std::uint8_t> b) {
    if (b.size() < 10 || (b[0] != 1 && b[0] != 2)) return std::nullopt;
    const bool v6 = b[0] == 2;
    PushConfig c;
    c.prefix = b[1];
    c.mtu = static_cast<std::uint16_t>((b[2] << 8) | b[3]);
    c.address = get_u32(&b[4]);
    if (c.prefix < 1 || c.prefix > 32 || c.mtu < 576 || c.mtu > max_inner_len) return std::nullopt;
    std::size_t i = 8;
    std::size_t ndns = b[i++];
    if (ndns > max_push_dns || b.size() < i + 4 * ndns + 1) return std::nullopt;
    for (std::size_t k = 0; k < ndns; ++k, i += 4) c.dns.push_back(get_u32(&b[i]));
    std::size_t nr = b[i++];
    if (nr > max_push_routes || (v6 ? b.size() < i + 5 * nr : b.size() != i + 5 * nr)) return std::nullopt;
    for (std::size_t k = 0; k < nr; ++k, i += 5) {
        Route r{get_u32(&b[i]), b[i + 4]};
        if (r.prefix > 32) return std::nullopt;
        c.routes.push_back(r);
    }
    if (v6 && !decode_push6(b, i, c)) return std::nullopt;
    return c;
}

std::uint32_t parse_ipv4(const std::string& s) {
    in_addr a{};
    if (inet_pton(AF_INET, s.c_str(), &a) != 1) throw ParseError("'" + s + "' is not an IPv4 address");
    return ntohl(a.s_addr);
}

Route parse_cidr(const std::string& s) {
    auto slash = s.find('/');
    if (slash == std::string::npos) throw ParseError("'" + s + "' is not ADDRESS/PREFIX");
    auto prefix = parse_int(std::string_view(s).substr(slash + 1), 0, 32);
    if (!prefix) throw ParseError("'" + s + "': the prefix must be 0..32");
    Route r{parse_ipv4(s.substr(0, slash)), static_cast<std::uint8_t>(*prefix)};
    std::uint32_t mask = r.prefix == 0 ? 0 : ~std::uint32_t(0) << (32 - r.prefix);
    r.addr &= mask;
    return r;
}

std::string ipv4_str(std::uint32_t a) {
    in_addr x{htonl(a)};
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &x, buf, sizeof buf);
    return buf;
}

std::string cidr_str(const Route& r) { return ipv4_str(r.addr) + "/" + std::to_string(r.prefix); }

Ip6 parse_ipv6(const std::string& s) {
    Ip6 a{};
    if (inet_pton(AF_INET6, s.c_str(), a.data()) != 1) throw ParseError("'" + s + "' is not an IPv6 address");
    return a;
}

Route6 parse_cidr6(const std::string& s) {
    auto slash = s.find('/');
    if (slash == std::string::npos) throw ParseError("'" + s + "' is not ADDRESS/PREFIX");
    auto prefix = parse_int(std::string_view(s).substr(slash + 1), 0, 128);
    if (!prefix) throw ParseError("'" + s + "': the prefix must be 0..128");
    Route6 r{parse_ipv6(s.substr(0, slash)), static_cast<std::uint8_t>(*prefix)};
    for (std::size_t bit = r.prefix; bit < 128; ++bit) r.addr[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
    return r;
}

std::string ipv6_str(const Ip6& a) {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, a.data(), buf, sizeof buf);
    return buf;
}

std::string cidr_str(const Route6& r) { return ipv6_str(r.addr) + "/" + std::to_string(r.prefix); }

bool is_ipv6_text(const std::string& s) { return s.find(':') != std::string::npos; }

bool covers(const Route6& r, const Ip6& a) {
    std::size_t full = r.prefix / 8;
    if (std::memcmp(r.addr.data(), a.data(), full) != 0) return false;
    if (r.prefix % 8 == 0) return true;
    auto mask = static_cast<std::uint8_t>(0xff00u >> (r.prefix % 8));
    return (r.addr[full] & mask) == (a[full] & mask);
}

bool overlap(const Route6& a, const Route6& b) { return covers(a, b.addr) || covers(b, a.addr); }

std::optional<InnerIp6> inner_ipv6(std::span<const std::uint8_t> p) {
    if (p.size() < 40 || (p[0] >> 4) != 6) return std::nullopt;
    std::size_t payload = (std::size_t(p[4]) << 8) | p[5];
    if (40 + payload > p.size()) return std::nullopt;
    InnerIp6 ip;
    std::memcpy(ip.src.data(), &p[8], 16);
    std::memcpy(ip.dst.data(), &p[24], 16);
    return ip;
}

std::optional<InnerIp> inner_ipv4(std::span<const std::uint8_t> p) {
    if (p.size() < 20 || (p[0] >> 4) != 4) return std::nullopt;
    std::size_t total = (std::size_t(p[2]) << 8) | p[3];
    if (total < 20 || total > p.size()) return std::nullopt;
    return InnerIp{get_u32(&p[12]), get_u32(&p[16])};
}

}  // namespace tn::tun
