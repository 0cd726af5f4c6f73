// Token proofs of the relay handshake (doc/PROTOCOL.relay.md §5): HMAC-SHA256 over both nonces, so
// the group token itself never crosses the wire; plus the random bytes the handshake needs.
#pragma once

#include <string_view>

#include "relay/wire.hpp"

namespace tn::relay {

Nonce random_nonce();
Ticket random_ticket();
std::uint64_t random_u64();

// What the vnet proves: HMAC(token, "tn-relay-1 vnet" || Nr || Nv || group || 0 || name).
Mac vnet_proof(std::string_view token, const Nonce& route_nonce, const Nonce& vnet_nonce, std::string_view group,
               std::string_view name);
// What the route proves back: HMAC(token, "tn-relay-1 route" || Nv || Nr).
Mac route_proof(std::string_view token, const Nonce& vnet_nonce, const Nonce& route_nonce);

// What a link setup frame proves (LINK_OPEN/ACCEPT/PARK/STANDBY): HMAC(ticket, "tn-relay-2 link" ||
// type u16 || Nr || vnet_id u32 || arg u64), Nr being the route's challenge on that link connection
// and `arg` the serve id (LINK_OPEN), the link id (LINK_ACCEPT) or 0. The ticket never crosses a link.
Mac link_proof(const Ticket& ticket, MsgType type, const Nonce& route_nonce, std::uint32_t vnet_id, std::uint64_t arg);

// The challenge a reused link continues with (PROTOCOL.relay.md §7): SHA-256("tn-relay-3 next
// challenge" || Nr). Both ends step it once per reuse, so no message carries it and no challenge repeats.
Nonce next_challenge(const Nonce& route_nonce);

// Constant-time comparison (a timing side channel must not reveal how many bytes matched).
bool equal(const Mac& a, const Mac& b);
bool equal(const Ticket& a, const Ticket& b);

// Capped exponential backoff with jitter for reconnects: 0.5 s doubling to `cap_ms`, then ±20 %.
class Backoff {
public:
    explicit Backoff(std::uint32_t cap_ms = 30000) : cap_ms_(cap_ms) {}
    std::uint32_t next_ms();  // the delay before the next attempt
    void reset() { attempt_ = 0; }
    std::uint32_t attempt() const { return attempt_; }

private:
    std::uint32_t cap_ms_;
    std::uint32_t attempt_ = 0;
};

}  // namespace tn::relay
