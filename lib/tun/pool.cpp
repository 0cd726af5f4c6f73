// Pool allocation: a key-derived first choice, then linear probing over the subnet's hosts.
#include "tun/pool.hpp"

#include "base/error.hpp"

namespace tn::tun {

Pool::Pool(Route subnet) : subnet_(subnet) {
    if (subnet.prefix > 30) throw ParseError("subnet " + cidr_str(subnet) + " is too small (the prefix must be <= 30)");
    if (subnet.prefix < 8) throw ParseError("subnet " + cidr_str(subnet) + " is too large (the prefix must be >= 8)");
    hosts_ = (std::uint32_t(1) << (32 - subnet.prefix)) - 2;
}

bool Pool::contains(std::uint32_t a) const {
    std::uint32_t mask = ~std::uint32_t(0) << (32 - subnet_.prefix);
    return (a & mask) == subnet_.addr;
}

bool Pool::usable(std::uint32_t a) const {
    return contains(a) && a != subnet_.addr && a != subnet_.addr + hosts_ + 1 && a != server_address();
}

bool Pool::reserve(const Key& key, std::uint32_t addr) {
    if (!usable(addr) || taken_.count(addr) || by_key_.count(key)) return false;
    taken_.insert(addr);
    by_key_[key] = addr;
    return true;
}

void Pool::release(const Key& key) {
    auto it = by_key_.find(key);
    if (it == by_key_.end()) return;
    taken_.erase(it->second);
    by_key_.erase(it);
}

std::optional<std::uint32_t> Pool::allocate(const Key& key) {
    if (auto it = by_key_.find(key); it != by_key_.end()) return it->second;
    // Slots are numbered 0..hosts_-2 for addresses server+1 .. broadcast-1.
    std::uint32_t slots = hosts_ - 1;
    Key h = hash({bytes(key)});
    std::uint32_t start = get_u32(h.data()) % slots;
    for (std::uint32_t i = 0; i < slots; ++i) {
        std::uint32_t a = server_address() + 1 + (start + i) % slots;
        if (!taken_.count(a)) {
            taken_.insert(a);
            by_key_[key] = a;
            return a;
        }
    }
    return std::nullopt;
}

Ip6 address6_for(const Route6& subnet6, const Route& subnet4, std::uint32_t v4) {
    Ip6 a = subnet6.addr;
    std::uint32_t offset = v4 - subnet4.addr;
    // Adds the offset to the low 32 bits, carrying: with subnet6's host bits >= subnet4's (checked),
    // the sum never leaves subnet6.
    std::uint64_t carry = offset;
    for (std::size_t i = 16; i-- > 0 && carry;) {
        carry += a[i];
        a[i] = static_cast<std::uint8_t>(carry);
        carry >>= 8;
    }
    return a;
}

void check_subnet6(const Route6& subnet6, const Route& subnet4) {
    if (subnet6.prefix < 8 || subnet6.prefix > 126)
        throw ParseError("subnet6 " + cidr_str(subnet6) + ": the prefix must be 8..126");
    if (128 - subnet6.prefix < 32 - subnet4.prefix)
        throw ParseError("subnet6 " + cidr_str(subnet6) + " has fewer addresses than subnet " + cidr_str(subnet4) +
                         " (every peer's IPv6 address is its IPv4 one's twin): use a prefix of at most " +
                         std::to_string(96 + subnet4.prefix));
    if (subnet6.addr[0] == 0xff || (subnet6.addr[0] == 0xfe && (subnet6.addr[1] & 0xc0) == 0x80))
        throw ParseError("subnet6 " + cidr_str(subnet6) + " is multicast or link-local");
}

}  // namespace tn::tun
