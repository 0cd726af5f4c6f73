// HMAC proofs, random nonces and reconnect backoff for the relay handshake, over OpenSSL.
#include "relay/auth.hpp"

#include "relay/evp_algos.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <memory>

namespace tn::relay {

namespace {
template <std::size_t N> std::array<std::uint8_t, N> random_bytes() {
    std::array<std::uint8_t, N> a{};
    if (RAND_bytes(a.data(), static_cast<int>(N)) != 1) throw Error(ExitCode::io, "no random bytes from OpenSSL");
    return a;
}

Mac hmac(std::string_view key, const Bytes& msg) {
    return hmac_sha256(std::span(reinterpret_cast<const std::uint8_t*>(key.data()), key.size()), msg);
}

void append(Bytes& b, std::string_view s) { b.insert(b.end(), s.begin(), s.end()); }
template <std::size_t N> void append(Bytes& b, const std::array<std::uint8_t, N>& a) {
    b.insert(b.end(), a.begin(), a.end());
}
}  // namespace

Nonce random_nonce() { return random_bytes<32>(); }
Ticket random_ticket() { return random_bytes<16>(); }
std::uint64_t random_u64() {
    auto b = random_bytes<8>();
    std::uint64_t v = 0;
    for (auto x : b) v = (v << 8) | x;
    return v;
}

Mac vnet_proof(std::string_view token, const Nonce& route_nonce, const Nonce& vnet_nonce, std::string_view group,
               std::string_view name, const Binding& binding) {
    Bytes m;
    append(m, "tn-relay-5 vnet");
    append(m, route_nonce);
    append(m, vnet_nonce);
    append(m, group);
    m.push_back(0);
    append(m, name);
    append(m, binding);
    return hmac(token, m);
}

Mac route_proof(std::string_view token, const Nonce& vnet_nonce, const Nonce& route_nonce, const Binding& binding) {
    Bytes m;
    append(m, "tn-relay-5 route");
    append(m, vnet_nonce);
    append(m, route_nonce);
    append(m, binding);
    return hmac(token, m);
}

Mac link_proof(const Ticket& ticket, MsgType type, const Nonce& route_nonce, std::uint32_t vnet_id, std::uint64_t arg,
               std::uint8_t cipher) {
    Writer w;
    w.raw(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>("tn-relay-5 link"), 15));
    w.u16(static_cast<std::uint16_t>(type));
    w.raw(route_nonce);
    w.u32(vnet_id);
    w.u64(arg);
    w.u8(cipher);
    auto m = w.take();
    return hmac(std::string_view(reinterpret_cast<const char*>(ticket.data()), ticket.size()), m);
}

Nonce next_challenge(const Nonce& route_nonce) {
    static constexpr std::string_view label = "tn-relay-3 next challenge";
    Nonce out{};
    unsigned int n = 0;
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> c(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!c || EVP_DigestInit_ex(c.get(), sha256_md(), nullptr) != 1 || EVP_DigestUpdate(c.get(), label.data(), label.size()) != 1 ||
        EVP_DigestUpdate(c.get(), route_nonce.data(), route_nonce.size()) != 1 || EVP_DigestFinal_ex(c.get(), out.data(), &n) != 1)
        throw Error(ExitCode::io, "SHA-256 failed in OpenSSL");
    return out;
}

bool equal(const Mac& a, const Mac& b) { return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0; }
bool equal(const Ticket& a, const Ticket& b) { return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0; }

BackoffPolicy reconnect_backoff(std::chrono::milliseconds cap) {
    // "Full jitter": each delay drawn from 5-100 % of its step (0.5 s, 1 s, 2 s ... cap). With ±20 % the
    // 10,000 vnets of a restarted route all came back within 200 ms of each other, wave after wave
    // (1,900 connections per 100 ms; most refused, ~6.6 failed attempts per vnet, 73 s until all were
    // registered: bench/relay/SCALE.md). Spread over the whole step, each wave is as wide as the step
    // itself, so the route takes them at its own rate. The first delay is still at most 0.5 s.
    return BackoffPolicy{std::chrono::milliseconds(500), cap, 2.0, 0.05, 1.0};
}

double random_unit() { return static_cast<double>(random_u64() >> 11) * 0x1.0p-53; }

}  // namespace tn::relay
