// The OpenSSL algorithms the relay uses, fetched once, and HMAC-SHA256 over them. OpenSSL 3.0 looks an
// algorithm up by name (method store, locks, string compares) on every init that names it through
// EVP_sha256()/EVP_aes_*_gcm() or the one-shot HMAC(): perf put that at most of libcrypto's share of a
// new proxied connection, which sets up ~18 HMACs and 8 cipher contexts across the three processes.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <span>

#include "relay/wire.hpp"

namespace tn::relay {

// Fetched on first use (thread-safe static initialisation), never changed or freed afterwards.
const EVP_MD* sha256_md();
const EVP_CIPHER* aes128_gcm_cipher();
const EVP_CIPHER* aes256_gcm_cipher();

// HMAC-SHA256 (RFC 2104) over the fetched digest. Throws tn::Error when OpenSSL fails.
Mac hmac_sha256(std::span<const std::uint8_t> key, std::span<const std::uint8_t> msg);

}  // namespace tn::relay
