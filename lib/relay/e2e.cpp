// End-to-end link handshake (doc/PROTOCOL.relay.md §12): NNpsk0-like, X25519 + keyed BLAKE2b.
#include "relay/e2e.hpp"

#include <sodium.h>

#include "base/error.hpp"
#include "relay/wire.hpp"

namespace tn::relay {

namespace {
void init_sodium() {
    // Idempotent and thread-safe; 1 when already done.
    if (sodium_init() < 0) throw Error(ExitCode::io, "libsodium failed to initialise");
}

// Keyed (MAC) or plain BLAKE2b-256 over the concatenation of `parts`.
std::array<std::uint8_t, 32> blake(std::span<const std::uint8_t> key, std::initializer_list<std::span<const std::uint8_t>> parts) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, key.empty() ? nullptr : key.data(), key.size(), 32);
    for (auto p : parts) crypto_generichash_update(&st, p.data(), p.size());
    std::array<std::uint8_t, 32> out{};
    crypto_generichash_final(&st, out.data(), out.size());
    sodium_memzero(&st, sizeof st);
    return out;
}
std::span<const std::uint8_t> str(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

std::array<std::uint8_t, 2> be16(std::uint16_t v) { return {static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)}; }
std::array<std::uint8_t, 8> be64(std::uint64_t v) {
    std::array<std::uint8_t, 8> b{};
    for (int i = 0; i < 8; ++i) b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (56 - 8 * i));
    return b;
}

E2eMac init_mac(const E2eSecret& secret, const E2eContext& ctx, const E2ePublic& ei) {
    return blake(secret, {str("tn-e2e-1 init"), be16(ctx.serve_id), ei});
}

// The transcript both sides hash, the DH, and from them the responder's MAC and the link key.
E2eResult schedule(const E2eSecret& secret, const E2eEphemeral& self, const E2ePublic& peer, const E2eContext& ctx,
                   const E2ePublic& ei, const E2ePublic& er, E2eMac& mac) {
    E2eResult r;
    std::array<std::uint8_t, crypto_scalarmult_BYTES> dh{};
    // -1 for a low-order point (the result would be all zero): a peer must not pick our key for us.
    if (crypto_scalarmult(dh.data(), self.sk.data(), peer.data()) != 0) {
        r.why = "a weak ephemeral key";
        return r;
    }
    auto h = blake({}, {str("tn-e2e-1 transcript"), be16(ctx.serve_id), be64(ctx.link_id), ei, er});
    mac = blake(secret, {str("tn-e2e-1 resp"), dh, h});
    r.key = blake(secret, {str("tn-e2e-1 key"), dh, h});
    sodium_memzero(dh.data(), dh.size());
    r.ok = true;
    return r;
}
}  // namespace

std::array<std::uint8_t, kE2eMsgSize> encode_e2e(const E2eMsg& m) {
    std::array<std::uint8_t, kE2eMsgSize> b{};
    b[0] = kE2eVersion;
    std::copy(m.eph.begin(), m.eph.end(), b.begin() + 1);
    std::copy(m.mac.begin(), m.mac.end(), b.begin() + 33);
    return b;
}

E2eMsg parse_e2e(std::span<const std::uint8_t> b) {
    if (b.size() != kE2eMsgSize)
        throw WireError("an end-to-end handshake message of " + std::to_string(b.size()) + " bytes (want " +
                        std::to_string(kE2eMsgSize) + "): is e2e_secret set on one vnet only?");
    if (b[0] != kE2eVersion) throw WireError("end-to-end handshake version " + std::to_string(b[0]) + " (want 1)");
    E2eMsg m;
    std::copy_n(b.begin() + 1, 32, m.eph.begin());
    std::copy_n(b.begin() + 33, 32, m.mac.begin());
    return m;
}

std::optional<E2eSecret> parse_e2e_secret(std::string_view text) {
    init_sodium();
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
    if (text.size() != sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL) - 1) return std::nullopt;
    E2eSecret s{};
    std::size_t n = 0;
    const char* end = nullptr;
    if (sodium_base642bin(s.data(), s.size(), text.data(), text.size(), nullptr, &n, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        n != s.size() || end != text.data() + text.size())
        return std::nullopt;
    return s;
}

std::string format_e2e_secret(const E2eSecret& s) {
    init_sodium();
    std::string out(sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(out.data(), out.size(), s.data(), s.size(), sodium_base64_VARIANT_ORIGINAL);
    out.pop_back();  // the terminating NUL
    return out;
}

E2eSecret random_e2e_secret() {
    init_sodium();
    E2eSecret s{};
    randombytes_buf(s.data(), s.size());
    return s;
}

E2eEphemeral::E2eEphemeral() {
    init_sodium();
    crypto_box_keypair(pk.data(), sk.data());
}
E2eEphemeral::E2eEphemeral(const E2eSecret& secret) : sk(secret) {
    init_sodium();
    crypto_scalarmult_base(pk.data(), sk.data());
}
void wipe_e2e_secret(E2eSecret& s) { sodium_memzero(s.data(), s.size()); }

E2eEphemeral::~E2eEphemeral() { sodium_memzero(sk.data(), sk.size()); }

E2eMsg e2e_init(const E2eSecret& secret, const E2eEphemeral& e, const E2eContext& ctx) {
    return {e.pk, init_mac(secret, ctx, e.pk)};
}

E2eResult e2e_respond(const E2eSecret& secret, const E2eEphemeral& e, const E2eContext& ctx, const E2eMsg& init,
                      E2eMsg& reply) {
    auto want = init_mac(secret, ctx, init.eph);
    if (crypto_verify_32(want.data(), init.mac.data()) != 0)
        return {false, "the using vnet's handshake does not match our e2e_secret (another secret, or a route that changed it)", {}};
    E2eMac mac{};
    auto r = schedule(secret, e, init.eph, ctx, init.eph, e.pk, mac);
    if (r.ok) reply = {e.pk, mac};
    return r;
}

E2eResult e2e_finish(const E2eSecret& secret, const E2eEphemeral& e, const E2eContext& ctx, const E2eMsg& reply) {
    E2eMac want{};
    auto r = schedule(secret, e, reply.eph, ctx, e.pk, reply.eph, want);
    if (r.ok && crypto_verify_32(want.data(), reply.mac.data()) != 0) {
        sodium_memzero(r.key.data(), r.key.size());
        return {false, "the serving vnet's handshake does not match our e2e_secret (another secret, or a route that changed it)", {}};
    }
    return r;
}

}  // namespace tn::relay
