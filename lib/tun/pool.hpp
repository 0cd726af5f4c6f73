// The server's address pool (doc/PROTOCOL.tun.md §7): host addresses of the subnet handed to peers,
// stable per public key. No I/O.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>

#include "tun/crypto.hpp"
#include "tun/wire.hpp"

namespace tn::tun {

class Pool {
public:
    // Throws tn::ParseError if the subnet has no room for the server plus one peer (prefix > 30).
    explicit Pool(Route subnet);

    const Route& subnet() const { return subnet_; }
    // The subnet's first host address, which the server's TUN takes (SPEC §3).
    std::uint32_t server_address() const { return subnet_.addr + 1; }
    bool contains(std::uint32_t a) const;

    // Reserves a static address for `key`. False if it is outside the subnet, the network, broadcast
    // or server address, or already taken.
    bool reserve(const Key& key, std::uint32_t addr);
    // The address of `key`: the same one every time it asks. The first choice is derived from the key
    // (so it is usually the same after a server restart too), then the next free one. nullopt when full.
    std::optional<std::uint32_t> allocate(const Key& key);
    // Gives `key`'s address back (a peer removed by a reload).
    void release(const Key& key);
    // Whether `a` could be handed out at all (inside, not network, broadcast or the server's).
    bool usable(std::uint32_t a) const;
    std::size_t capacity() const { return hosts_ - 1; }  // minus the server's
    std::size_t used() const { return by_key_.size(); }

private:
    Route subnet_;
    std::uint32_t hosts_ = 0;  // usable host addresses in the subnet
    std::map<Key, std::uint32_t> by_key_;
    std::set<std::uint32_t> taken_;
};

// IPv6 inside the tunnel (`subnet6`, §7): each IPv4 address of the subnet has its IPv6 twin at the
// same offset in subnet6 (10.99.0.7 in 10.99.0.0/24 -> fd00:99::7 in fd00:99::/64), so the server's
// TUN takes subnet6's first host address and a peer's IPv6 address is as stable as its IPv4 one.
Ip6 address6_for(const Route6& subnet6, const Route& subnet4, std::uint32_t v4);
// Throws tn::ParseError unless subnet6 can hold the twin of every address of subnet4.
void check_subnet6(const Route6& subnet6, const Route& subnet4);

}  // namespace tn::tun
