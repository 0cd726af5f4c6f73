// The cryptographic primitives of tn-tun (doc/PROTOCOL.tun.md §2), each a thin call into libsodium.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace tn::tun {

inline constexpr std::size_t key_len = 32;
inline constexpr std::size_t tag_len = 16;  // Poly1305
using Key = std::array<std::uint8_t, key_len>;
using Mac = std::array<std::uint8_t, 16>;
using Bytes = std::span<const std::uint8_t>;

void wipe(void* p, std::size_t n);

// A private key is wiped when its holder goes (ephemeral keys in particular: forward secrecy is only
// as good as their erasure).
struct KeyPair {
    Key priv{};
    Key pub{};
    KeyPair() = default;
    KeyPair(const KeyPair&) = default;
    KeyPair& operator=(const KeyPair&) = default;
    ~KeyPair() { wipe(priv.data(), priv.size()); }
};

// A pre-shared key, wiped when its holder goes like a private key: every copy a config load, a check
// or a reload makes (a PeerConfig, ClientSettings) is erased with it, not left in freed memory.
struct SecretKey {
    Key key{};
    SecretKey() = default;
    SecretKey(const Key& k) : key(k) {}  // implicit: a Key is assigned to it
    SecretKey(const SecretKey&) = default;
    SecretKey& operator=(const SecretKey&) = default;
    ~SecretKey() { wipe(key.data(), key.size()); }
    operator const Key&() const { return key; }  // passed where a Key is read
    bool operator==(const SecretKey& o) const { return key == o.key; }
};

// Wipes a key held on the stack on every way out of its scope, early returns on a failed check
// included (a handshake key derived from a DH must not outlive the call that needed it).
class WipeOnExit {
public:
    explicit WipeOnExit(Key& k) : k_(k) {}
    WipeOnExit(const WipeOnExit&) = delete;
    WipeOnExit& operator=(const WipeOnExit&) = delete;
    ~WipeOnExit() { wipe(k_.data(), k_.size()); }

private:
    Key& k_;
};

// Calls sodium_init() once; every entry point of lib/tun calls it, so callers need not.
void crypto_init();

KeyPair generate_keypair();
// 32 random bytes: a pre-shared key (PROTOCOL.tun.md §4), as `wg genpsk` makes one.
Key generate_psk();
Key public_key(const Key& priv);
// Standard base64 with padding (44 characters), as wg(8) prints keys.
std::string key_to_base64(const Key& k);
// Throws tn::ParseError when `s` is not 44 base64 characters decoding to 32 bytes.
Key key_from_base64(std::string_view s);

// X25519; false when the result is all zeros (a low-order point: the peer is cheating).
[[nodiscard]] bool dh(Key& out, const Key& priv, const Key& pub);

// BLAKE2b-256 of the concatenated parts.
Key hash(std::initializer_list<Bytes> parts);
// Keyed BLAKE2b-256: the PRF our KDF is built on (in place of HMAC; BLAKE2b is a keyed PRF by design).
Key prf(const Key& key, std::initializer_list<Bytes> parts);
// Keyed BLAKE2b-128 (mac1).
Mac mac(const Key& key, Bytes data);

// HKDF-style expansion: t0 = PRF(ck, input); out1 = PRF(t0, 0x01); out2 = PRF(t0, out1 || 0x02).
void kdf1(const Key& ck, Bytes input, Key& out1);
void kdf2(const Key& ck, Bytes input, Key& out1, Key& out2);

// ChaCha20-Poly1305 IETF; the 96-bit nonce is 4 zero bytes followed by `counter` little-endian.
// `out` must hold plain.size() + tag_len bytes (it may alias `plain`).
void aead_seal(const Key& k, std::uint64_t counter, Bytes plain, Bytes ad, std::uint8_t* out);
// `out` must hold cipher.size() - tag_len bytes; false when the tag does not verify.
[[nodiscard]] bool aead_open(const Key& k, std::uint64_t counter, Bytes cipher, Bytes ad, std::uint8_t* out);

// The transport AEAD of a keypair (PROTOCOL.tun.md §4, revision 5): its value is the byte the response
// carries and the handshake hash covers.
enum class Suite : std::uint8_t { chacha20_poly1305 = 0, aes256_gcm = 1 };
const char* suite_name(Suite s);

// True when the CPU has AES-NI and carry-less multiplication: libsodium's AES-256-GCM needs both (it
// has no software fallback), and with them it is about twice as fast as ChaCha20-Poly1305 here
// (bench/tun/README.md). What `cipher = "auto"` asks.
bool aes_gcm_available();

// AES-256-GCM with aead_seal's nonce and calling conventions; only where aes_gcm_available().
void aes_seal(const Key& k, std::uint64_t counter, Bytes plain, Bytes ad, std::uint8_t* out);
[[nodiscard]] bool aes_open(const Key& k, std::uint64_t counter, Bytes cipher, Bytes ad, std::uint8_t* out);

inline Bytes bytes(const Key& k) { return Bytes(k.data(), k.size()); }
inline Bytes bytes(std::string_view s) { return Bytes(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()); }

// Constant-time comparison (keys and MACs).
bool equal_ct(Bytes a, Bytes b);

std::string to_hex(Bytes b);

}  // namespace tn::tun
