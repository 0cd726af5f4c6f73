// The few byte-level crypto helpers the relay tools need outside the protocol (a dashboard password
// check, an instance file name, wiping link keys), so no tool includes OpenSSL itself
// (tests/integration/test_layering.py).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace tn::relay {

using Digest256 = std::array<std::uint8_t, 32>;

// SHA-256 of `data`. Throws tn::Error when OpenSSL fails.
Digest256 sha256(std::string_view data);

// Whether a and b hold the same bytes, in time that depends only on their length (CRYPTO_memcmp):
// for secrets and digests of secrets. Different lengths are unequal (the length is not hidden).
bool equal_bytes(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b);

// Overwrites `bytes` with zeros in a way the compiler does not optimise away (OPENSSL_cleanse).
void wipe(std::span<std::uint8_t> bytes);

}  // namespace tn::relay
