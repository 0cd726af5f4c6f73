// tn-tun's datagram layouts (lib/tun/wire): classification of any datagram from the internet, the
// pushed config a server sends (decoded by every client), the inner IPv4 and IPv6 headers, and the address
// parsers config files feed. A decoded push must encode back to a push that decodes the same.
#include <cstdint>
#include <string>

#include "base/error.hpp"
#include "tun/wire.hpp"

using namespace tn::tun;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::uint8_t> in(data, size);
    if (auto c = classify(in)) {
        if (size > max_datagram_len) __builtin_trap();  // longer datagrams are dropped unread
        (void)c->receiver;
    }
    if (auto p = decode_push(in)) {
        if (p->dns.size() > max_push_dns || p->routes.size() > max_push_routes) __builtin_trap();
        auto again = decode_push(encode_push(*p));
        if (!again || !(*again == *p)) __builtin_trap();
        for (const auto& r : p->routes) (void)cidr_str(r);
        if (p->dns6.size() > max_push_dns || p->routes6.size() > max_push_routes) __builtin_trap();
        for (const auto& r : p->routes6) (void)cidr_str(r);
    }
    (void)inner_ipv4(in);
    (void)inner_ipv6(in);
    std::string text(reinterpret_cast<const char*>(data), std::min<std::size_t>(size, 64));
    try {
        std::uint32_t a = parse_ipv4(text);
        if (parse_ipv4(ipv4_str(a)) != a) __builtin_trap();
    } catch (const tn::ParseError&) {
    }
    try {
        Route6 r = parse_cidr6(text);
        if (!(parse_cidr6(cidr_str(r)) == r)) __builtin_trap();
    } catch (const tn::ParseError&) {
    }
    try {
        Route r = parse_cidr(text);
        if (!(parse_cidr(cidr_str(r)) == r)) __builtin_trap();
    } catch (const tn::ParseError&) {
    }
    return 0;
}
