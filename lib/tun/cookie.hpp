// Cookie replies (doc/PROTOCOL.tun.md §3, §6): under handshake load the server answers an initiation
// without a valid mac2 with an encrypted cookie bound to the sender's address instead of doing DH
// work; the client retries with mac2 = MAC(cookie, initiation), proving it receives at that address.
// Pure functions over byte buffers; the server keeps the rotating secret.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "tun/crypto.hpp"
#include "tun/session.hpp"
#include "tun/wire.hpp"

namespace tn::tun {

using Cookie = std::array<std::uint8_t, 16>;
inline constexpr std::size_t cookie_nonce_len = 24;
// How long a secret (server) and a received cookie (client) stay valid.
inline constexpr seconds cookie_secret_life{120};
inline constexpr seconds cookie_use_life{110};  // the client stops using it a bit before

// The address bytes a cookie binds to: IPv4 address and port (6 bytes) or IPv6 (18 bytes).
struct CookieSource {
    std::array<std::uint8_t, 18> b{};
    std::size_t len = 0;
    Bytes bytes() const { return Bytes(b.data(), len); }
};

// cookie = MAC(secret, source)
Cookie make_cookie(const Key& secret, const CookieSource& source);
// mac2 = keyed BLAKE2b-128 with the 16-byte cookie as key, over the initiation's first 132 bytes.
Mac make_mac2(const Cookie& cookie, Bytes initiation_without_mac2);
// Writes a cookie_len-byte reply to the initiation `init` (its sender index and mac1 are used).
void write_cookie_reply(const Key& server_pub, const Cookie& cookie, Bytes init,
                        const std::array<std::uint8_t, cookie_nonce_len>& nonce, std::uint8_t* out);
// The client side: the cookie in `reply`, if it decrypts with the server's key and the mac1 we sent.
std::optional<Cookie> open_cookie_reply(const Key& server_pub, Bytes reply, const Mac& sent_mac1);

// The server's rotating secret and the check of mac2.
class CookieJar {
public:
    // Whether an initiation of initiation_mac2_len bytes carries a valid mac2 for `source`.
    bool mac2_ok(Bytes init, const CookieSource& source, TimePoint now);
    // Writes a cookie reply for `init` from `source` (random nonce) into out.
    void reply(const Key& server_pub, Bytes init, const CookieSource& source, TimePoint now, std::uint8_t* out);

private:
    const Key& secret(TimePoint now);
    Key secret_{};
    TimePoint made_{};
    bool have_ = false;
};

}  // namespace tn::tun
