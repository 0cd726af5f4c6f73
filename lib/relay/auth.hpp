// Token proofs of the relay handshake (doc/PROTOCOL.relay.md §5): HMAC-SHA256 over both nonces, so
// the group token itself never crosses the wire; plus the random bytes the handshake needs.
#pragma once

#include <chrono>
#include <string_view>

#include "base/backoff.hpp"

#include "relay/wire.hpp"

namespace tn::relay {

Nonce random_nonce();
Ticket random_ticket();
std::uint64_t random_u64();

// The control connection's TLS exporter value (RFC 8446 §7.5, label "EXPORTER-tn-relay-5 auth", no
// context, 32 bytes), or 32 zero bytes with tls = false. Both token proofs cover it, so a proof made
// inside one TLS session is worthless in any other (a man in the middle cannot relay it).
using Binding = std::array<std::uint8_t, 32>;

// What the vnet proves: HMAC(token, "tn-relay-5 vnet" || Nr || Nv || group || 0 || name || E).
Mac vnet_proof(std::string_view token, const Nonce& route_nonce, const Nonce& vnet_nonce, std::string_view group,
               std::string_view name, const Binding& binding);
// What the route proves back: HMAC(token, "tn-relay-5 route" || Nv || Nr || E).
Mac route_proof(std::string_view token, const Nonce& vnet_nonce, const Nonce& route_nonce, const Binding& binding);

// What a link setup frame proves (LINK_OPEN/ACCEPT/PARK/STANDBY): HMAC(ticket, "tn-relay-5 link" ||
// type u16 || Nr || vnet_id u32 || arg u64 || cipher u8), Nr being the route's challenge on that link
// connection, `arg` the serve id (LINK_OPEN), the link id (LINK_ACCEPT) or 0, and `cipher` LINK_OPEN's
// cipher byte (0 in the others). The ticket never crosses a link.
Mac link_proof(const Ticket& ticket, MsgType type, const Nonce& route_nonce, std::uint32_t vnet_id, std::uint64_t arg,
               std::uint8_t cipher = 0);

// The challenge a reused link continues with (PROTOCOL.relay.md §7): SHA-256("tn-relay-3 next
// challenge" || Nr). Both ends step it once per reuse, so no message carries it and no challenge repeats.
Nonce next_challenge(const Nonce& route_nonce);

// Constant-time comparison (a timing side channel must not reveal how many bytes matched).
bool equal(const Mac& a, const Mac& b);
bool equal(const Ticket& a, const Ticket& b);

// tn-vnet's reconnect delays (tn::Backoff's rule): steps of 0.5 s doubling to `cap`, each delay drawn
// from 5-100 % of its step ("full jitter", so that the vnets of a restarted route spread out).
BackoffPolicy reconnect_backoff(std::chrono::milliseconds cap = std::chrono::seconds(30));
// A uniform draw in [0, 1] from the CSPRNG, for Backoff::jitter.
double random_unit();

}  // namespace tn::relay
