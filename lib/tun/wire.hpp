// tn-tun datagram layouts (doc/PROTOCOL.tun.md §3): sizes, header parsing and the pushed-config
// message. Encode and decode only: no state, no I/O. Multi-byte fields are big-endian.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace tn::tun {

enum class MsgType : std::uint8_t { initiation = 1, response = 2, cookie = 3, data = 4, push = 5 };

inline constexpr std::size_t initiation_len = 132;  // 1+3+4+32+48+28+16
inline constexpr std::size_t initiation_mac2_len = 148;  // the same plus mac2, under load (§6)
inline constexpr std::size_t response_len = 76;     // 1+3+4+4+32+16+16
inline constexpr std::size_t cookie_len = 64;       // 1+3+4+24+16+16
inline constexpr std::size_t transport_header_len = 16;  // type, reserved[3], receiver, counter
inline constexpr std::size_t max_inner_len = 9000;  // the largest MTU a config may set
// The largest datagram we accept: anything longer is dropped before it is looked at.
inline constexpr std::size_t max_datagram_len = transport_header_len + max_inner_len + 16;

// Field offsets inside an initiation.
namespace init_off {
inline constexpr std::size_t sender = 4, ephemeral = 8, enc_static = 40, enc_timestamp = 88, mac1 = 116;
}
// Field offsets inside a cookie reply.
namespace cookie_off {
inline constexpr std::size_t receiver = 4, nonce = 8, enc_cookie = 32;
}
// Field offsets inside a response.
namespace resp_off {
inline constexpr std::size_t suite = 1;  // revision 5: the first reserved byte names the transport AEAD
inline constexpr std::size_t sender = 4, receiver = 8, ephemeral = 12, enc_empty = 44, mac1 = 60;
}

inline void put_u32(std::uint8_t* p, std::uint32_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 24);
    p[1] = static_cast<std::uint8_t>(v >> 16);
    p[2] = static_cast<std::uint8_t>(v >> 8);
    p[3] = static_cast<std::uint8_t>(v);
}
inline std::uint32_t get_u32(const std::uint8_t* p) {
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}
inline void put_u64(std::uint8_t* p, std::uint64_t v) {
    put_u32(p, static_cast<std::uint32_t>(v >> 32));
    put_u32(p + 4, static_cast<std::uint32_t>(v));
}
inline std::uint64_t get_u64(const std::uint8_t* p) { return (std::uint64_t(get_u32(p)) << 32) | get_u32(p + 4); }

// What the first bytes of a datagram say, after the length checks of §3; nullopt means drop.
struct Classified {
    MsgType type;
    std::uint32_t receiver = 0;  // transport messages only
    std::uint64_t counter = 0;   // transport messages only
};
std::optional<Classified> classify(std::span<const std::uint8_t> dgram);

void write_transport_header(std::uint8_t* out, MsgType t, std::uint32_t receiver, std::uint64_t counter);

// The settings the server pushes after a handshake (PROTOCOL.tun.md §5). IPv4 addresses in host order.
struct Route {
    std::uint32_t addr = 0;
    std::uint8_t prefix = 0;
    bool operator==(const Route&) const = default;
};
// IPv6 addresses are their 16 bytes in network order.
using Ip6 = std::array<std::uint8_t, 16>;
struct Route6 {
    Ip6 addr{};
    std::uint8_t prefix = 0;
    bool operator==(const Route6&) const = default;
};
struct PushConfig {
    std::uint32_t address = 0;
    std::uint8_t prefix = 0;
    std::uint16_t mtu = 0;
    std::vector<std::uint32_t> dns;
    std::vector<Route> routes;
    // IPv6 inside the tunnel (push version 2, only from a server with `subnet6`); prefix6 0: none.
    std::uint8_t prefix6 = 0;
    Ip6 address6{};
    std::vector<Ip6> dns6;
    std::vector<Route6> routes6;
    bool has_v6() const { return prefix6 != 0; }
    bool operator==(const PushConfig&) const = default;
};
inline constexpr std::size_t max_push_dns = 8;      // per address family
inline constexpr std::size_t max_push_routes = 64;  // per address family
// Version 1 without IPv6 (what every revision understands), version 2 with it.
std::vector<std::uint8_t> encode_push(const PushConfig& c);
// nullopt on any length, version or range problem.
std::optional<PushConfig> decode_push(std::span<const std::uint8_t> b);

// Dotted-quad and CIDR helpers (throw tn::ParseError).
std::uint32_t parse_ipv4(const std::string& s);
Route parse_cidr(const std::string& s);
std::string ipv4_str(std::uint32_t a);
std::string cidr_str(const Route& r);
// The same for IPv6 (a CIDR's host bits are cleared).
Ip6 parse_ipv6(const std::string& s);
Route6 parse_cidr6(const std::string& s);
std::string ipv6_str(const Ip6& a);
std::string cidr_str(const Route6& r);
bool is_ipv6_text(const std::string& s);  // has a ':' (what parse_cidr6 rather than parse_cidr takes)
bool covers(const Route6& r, const Ip6& a);
bool overlap(const Route6& a, const Route6& b);

// The inner IPv4 header fields routing needs; nullopt if it is not a plausible IPv4 packet.
struct InnerIp {
    std::uint32_t src, dst;
};
std::optional<InnerIp> inner_ipv4(std::span<const std::uint8_t> pkt);
// The same for IPv6 (the fixed header: addresses, and a payload length that fits).
struct InnerIp6 {
    Ip6 src, dst;
};
std::optional<InnerIp6> inner_ipv6(std::span<const std::uint8_t> pkt);

}  // namespace tn::tun
