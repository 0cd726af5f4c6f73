// libsodium calls behind the primitives of doc/PROTOCOL.tun.md §2.
#include "tun/crypto.hpp"

#include <sodium.h>

#include <cstring>

#include "base/error.hpp"

namespace tn::tun {

void crypto_init() {
    // sodium_init() is idempotent and thread-safe; it returns 1 when already initialised.
    if (sodium_init() < 0) throw Error(ExitCode::io, "libsodium failed to initialise");
}

KeyPair generate_keypair() {
    crypto_init();
    KeyPair kp;
    randombytes_buf(kp.priv.data(), kp.priv.size());
    // Clamping as X25519 does it, so the stored private key is canonical.
    kp.priv[0] &= 248;
    kp.priv[31] &= 127;
    kp.priv[31] |= 64;
    kp.pub = public_key(kp.priv);
    return kp;
}

Key generate_psk() {
    crypto_init();
    Key k;
    randombytes_buf(k.data(), k.size());
    return k;
}

Key public_key(const Key& priv) {
    crypto_init();
    Key pub;
    crypto_scalarmult_curve25519_base(pub.data(), priv.data());
    return pub;
}

std::string key_to_base64(const Key& k) {
    crypto_init();
    char buf[sodium_base64_ENCODED_LEN(key_len, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(buf, sizeof buf, k.data(), k.size(), sodium_base64_VARIANT_ORIGINAL);
    return buf;
}

Key key_from_base64(std::string_view s) {
    crypto_init();
    Key k;
    std::size_t n = 0;
    const char* end = nullptr;
    if (s.size() != 44 ||
        sodium_base642bin(k.data(), k.size(), s.data(), s.size(), nullptr, &n, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        n != key_len || end != s.data() + s.size())
        throw ParseError("not a base64 X25519 key (expected 44 characters encoding 32 bytes)");
    return k;
}

bool dh(Key& out, const Key& priv, const Key& pub) {
    return crypto_scalarmult_curve25519(out.data(), priv.data(), pub.data()) == 0;
}

Key hash(std::initializer_list<Bytes> parts) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, nullptr, 0, key_len);
    for (auto p : parts) crypto_generichash_update(&st, p.data(), p.size());
    Key out;
    crypto_generichash_final(&st, out.data(), out.size());
    return out;
}

Key prf(const Key& key, std::initializer_list<Bytes> parts) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, key.data(), key.size(), key_len);
    for (auto p : parts) crypto_generichash_update(&st, p.data(), p.size());
    Key out;
    crypto_generichash_final(&st, out.data(), out.size());
    return out;
}

Mac mac(const Key& key, Bytes data) {
    Mac out;
    crypto_generichash(out.data(), out.size(), data.data(), data.size(), key.data(), key.size());
    return out;
}

void kdf1(const Key& ck, Bytes input, Key& out1) {
    Key t0 = prf(ck, {input});
    const std::uint8_t one = 1;
    out1 = prf(t0, {Bytes(&one, 1)});
    wipe(t0.data(), t0.size());
}

void kdf2(const Key& ck, Bytes input, Key& out1, Key& out2) {
    Key t0 = prf(ck, {input});
    const std::uint8_t one = 1, two = 2;
    Key t1 = prf(t0, {Bytes(&one, 1)});
    out2 = prf(t0, {bytes(t1), Bytes(&two, 1)});
    out1 = t1;
    wipe(t0.data(), t0.size());
    wipe(t1.data(), t1.size());
}

static void make_nonce(std::uint8_t nonce[12], std::uint64_t counter) {
    std::memset(nonce, 0, 4);
    for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<std::uint8_t>(counter >> (8 * i));
}

void aead_seal(const Key& k, std::uint64_t counter, Bytes plain, Bytes ad, std::uint8_t* out) {
    std::uint8_t nonce[12];
    make_nonce(nonce, counter);
    unsigned long long clen = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, plain.data(), plain.size(), ad.data(), ad.size(),
                                              nullptr, nonce, k.data());
}

bool aead_open(const Key& k, std::uint64_t counter, Bytes cipher, Bytes ad, std::uint8_t* out) {
    if (cipher.size() < tag_len) return false;
    std::uint8_t nonce[12];
    make_nonce(nonce, counter);
    unsigned long long plen = 0;
    return crypto_aead_chacha20poly1305_ietf_decrypt(out, &plen, nullptr, cipher.data(), cipher.size(), ad.data(),
                                                     ad.size(), nonce, k.data()) == 0;
}

const char* suite_name(Suite s) { return s == Suite::aes256_gcm ? "aes-256-gcm" : "chacha20-poly1305"; }

bool aes_gcm_available() {
    crypto_init();
    return crypto_aead_aes256gcm_is_available() == 1;
}

// The key schedule is expanded per packet: it costs ~10% at 1400 bytes (measured), and keeping it
// would add a 512-byte state per keypair direction to every peer.
void aes_seal(const Key& k, std::uint64_t counter, Bytes plain, Bytes ad, std::uint8_t* out) {
    std::uint8_t nonce[12];
    make_nonce(nonce, counter);
    unsigned long long clen = 0;
    crypto_aead_aes256gcm_encrypt(out, &clen, plain.data(), plain.size(), ad.data(), ad.size(), nullptr, nonce,
                                  k.data());
}

bool aes_open(const Key& k, std::uint64_t counter, Bytes cipher, Bytes ad, std::uint8_t* out) {
    if (cipher.size() < tag_len) return false;
    std::uint8_t nonce[12];
    make_nonce(nonce, counter);
    unsigned long long plen = 0;
    return crypto_aead_aes256gcm_decrypt(out, &plen, nullptr, cipher.data(), cipher.size(), ad.data(), ad.size(),
                                         nonce, k.data()) == 0;
}

bool equal_ct(Bytes a, Bytes b) { return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0; }

void wipe(void* p, std::size_t n) { sodium_memzero(p, n); }

std::string to_hex(Bytes b) {
    static const char* digits = "0123456789abcdef";
    std::string s;
    s.reserve(b.size() * 2);
    for (auto c : b) {
        s += digits[c >> 4];
        s += digits[c & 15];
    }
    return s;
}

}  // namespace tn::tun
