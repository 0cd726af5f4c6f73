// End-to-end links (doc/PROTOCOL.relay.md §12): a handshake between the two vnets of a link, run as the
// link's first two records, so that the route relays records under keys it never learns. A pure,
// bounded codec and key schedule over libsodium (X25519, keyed BLAKE2b): no I/O, so it is unit-tested
// with vectors and fuzzed.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "relay/seal.hpp"

namespace tn::relay {

// The secret both vnets share ([vnet] e2e_secret): 32 random bytes. A route sees every handshake, so
// a guessable passphrase could be tried offline: only full-entropy keys are accepted.
using E2eSecret = std::array<std::uint8_t, 32>;
using E2ePublic = std::array<std::uint8_t, 32>;
using E2eMac = std::array<std::uint8_t, 32>;

// The cipher byte's flag (LINK_OPEN, LINK_OK) that says "this link runs the handshake": it is covered
// by the link proof and the key boxes, and the low bits keep their meaning (0 plain, 1-2 sealed).
inline constexpr std::uint8_t kE2eFlag = 0x80;
inline constexpr bool is_e2e(std::uint8_t cipher) { return (cipher & kE2eFlag) != 0; }
inline constexpr Cipher base_cipher(std::uint8_t cipher) { return static_cast<Cipher>(cipher & 0x7f); }
// Records of an e2e link always carry a tag (they are sealed under the e2e keys whatever the route's
// cipher is), so the route frames them with one from the first record on.
inline constexpr std::size_t link_tag_size(std::uint8_t cipher) { return is_e2e(cipher) ? kTagSize : tag_size(base_cipher(cipher)); }
// The record cipher of an e2e link's handshake records: the route's (sealed links), else AES-256-GCM
// under the all-zero key (plain links: framed with a tag, protected by nothing but their own MACs).
inline constexpr Cipher e2e_outer_cipher(std::uint8_t cipher) {
    return base_cipher(cipher) == Cipher::none ? Cipher::aes256_gcm : base_cipher(cipher);
}
// The records after the handshake.
inline constexpr Cipher kE2eCipher = Cipher::aes256_gcm;

// A handshake message: version u8 (1), ephemeral X25519 public key, MAC. Both ways are this size.
inline constexpr std::size_t kE2eMsgSize = 1 + 32 + 32;
inline constexpr std::uint8_t kE2eVersion = 1;
struct E2eMsg {
    E2ePublic eph{};
    E2eMac mac{};
};
std::array<std::uint8_t, kE2eMsgSize> encode_e2e(const E2eMsg& m);
// Exactly kE2eMsgSize bytes with version 1, else WireError (before anything else is looked at).
E2eMsg parse_e2e(std::span<const std::uint8_t> b);

// The base64 (standard, padded: 44 characters) of 32 random bytes, as `tn-vnet genkey` prints;
// nullopt for anything else (a passphrase, a short or long key, bad base64).
std::optional<E2eSecret> parse_e2e_secret(std::string_view text);
std::string format_e2e_secret(const E2eSecret& s);
E2eSecret random_e2e_secret();
// Overwrites a secret the optimiser may not skip (sodium_memzero): for holders outside lib/relay.
void wipe_e2e_secret(E2eSecret& s);

// One side's ephemeral key pair: drawn per link use, wiped on destruction.
struct E2eEphemeral {
    E2eEphemeral();                                   // random
    explicit E2eEphemeral(const E2eSecret& secret);   // fixed (test vectors)
    ~E2eEphemeral();
    E2eEphemeral(const E2eEphemeral&) = delete;
    E2eEphemeral& operator=(const E2eEphemeral&) = delete;
    E2eSecret sk{};
    E2ePublic pk{};
};

// What both ends know of the link: the serve id (the using side asked for it, the serving side got
// it in LINK_REQUEST) and the link id (LINK_OPENED, LINK_REQUEST).
struct E2eContext {
    std::uint16_t serve_id = 0;
    std::uint64_t link_id = 0;
};

// The using side's first message: its ephemeral and MAC = BLAKE2b-256(key = secret,
// "tn-e2e-1 init" || serve id u16 || e_i).
E2eMsg e2e_init(const E2eSecret& secret, const E2eEphemeral& e, const E2eContext& ctx);

// The result of either side's check: the link key both derive (LinkSeal's input), or why not.
struct E2eResult {
    bool ok = false;
    std::string why;
    LinkKey key{};
};

// The serving side: checks the using side's message, answers with its ephemeral and
// MAC = BLAKE2b-256(key = secret, "tn-e2e-1 resp" || DH || transcript), and derives the key.
// `reply` is set only when ok.
E2eResult e2e_respond(const E2eSecret& secret, const E2eEphemeral& e, const E2eContext& ctx, const E2eMsg& init,
                      E2eMsg& reply);
// The using side: checks the reply against its own message and derives the same key.
E2eResult e2e_finish(const E2eSecret& secret, const E2eEphemeral& e, const E2eContext& ctx, const E2eMsg& reply);

}  // namespace tn::relay
