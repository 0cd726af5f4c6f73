// Sealed links (doc/PROTOCOL.relay.md §7-8): the key boxes that carry a link key between a vnet and the
// route, per-direction keys from HKDF-SHA256, and the AEAD record encoder/decoder. Pure functions
// over caller-owned buffers: no I/O, no allocation per record (so it can be fuzzed and unit-tested).
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "relay/wire.hpp"

namespace tn::relay {

// The AEAD a link's records use; LINK_OK names it, so another can be added without a new version.
// `none` (tls = false): the same records in clear, with no tag, so a plain link too tells the route
// where each connection's stream ends and can be parked again.
enum class Cipher : std::uint8_t { none = 0, aes128_gcm = 1, aes256_gcm = 2 };
// Measured faster of the two here (bench/relay/README.md); both are accepted.
inline constexpr Cipher kLinkCipher = Cipher::aes128_gcm;

using LinkKey = std::array<std::uint8_t, 32>;
inline constexpr std::size_t kTagSize = 16;
inline constexpr std::size_t kRecordHeader = 4;  // type u8 + plaintext length u24
inline constexpr std::size_t kRecordOverhead = kRecordHeader + kTagSize;  // the most a record adds
inline constexpr std::size_t tag_size(Cipher c) { return c == Cipher::none ? 0 : kTagSize; }
// Largest plaintext of one record; a header announcing more is refused before any buffer is sized.
inline constexpr std::size_t kRecordMax = 65536;
inline constexpr std::size_t kKeyBoxSize = 32 + kTagSize;
using KeyBox = std::array<std::uint8_t, kKeyBoxSize>;

// Which end of a link: the using side opened it (a vnet's use, or the route for a remote_port or
// vhost client); the serving side connects to the service. Each direction has its own key.
enum class Side : std::uint8_t { use = 0, serve = 1 };

// HKDF-SHA256 (RFC 5869), extract + expand, n <= 255 * 32.
Bytes hkdf_sha256(std::span<const std::uint8_t> ikm, std::span<const std::uint8_t> salt, std::string_view info,
                  std::size_t n);

LinkKey random_link_key();
// Which way a key box travels on a link connection: the using vnet sends the link key it drew to the
// route in its LINK_OPEN (`to_route`, associated data = the serve id); the route sends it on to the
// serving endpoint in LINK_OK (`to_vnet`, associated data = the link id). Each way has its own HKDF
// label, so a box can never be taken for one going the other way.
enum class BoxWay : std::uint8_t { to_vnet, to_route };
// The link key sealed between one vnet and the route: AES-256-GCM under HKDF(ticket, salt = the
// route's challenge on that vnet's link connection, the way's label), `aad` as associated data. The
// challenge is fresh per connection and each way boxes once per challenge, so each box key encrypts
// exactly one message (fixed nonce).
// The associated data is `aad` (u64) || the cipher byte the frame names, so a box never opens under
// a LINK_OPEN or LINK_OK whose cipher byte was changed on the way.
KeyBox seal_key_box(const Ticket& ticket, const Nonce& route_nonce, std::uint64_t aad, const LinkKey& key, BoxWay way,
                    Cipher cipher);
// Throws WireError when the box was not made for this ticket, challenge, way and associated data.
LinkKey open_key_box(const Ticket& ticket, const Nonce& route_nonce, std::uint64_t aad, const KeyBox& box, BoxWay way,
                     Cipher cipher);

// Records per key: after this many in one direction both ends step that direction's key and IV
// (PROTOCOL.relay.md §8), well inside AES-GCM's limits for records of up to 64 KiB.
inline constexpr std::uint64_t kRekeyRecords = std::uint64_t{1} << 24;

// One direction's AEAD state: key and IV from HKDF(link key, "tn-relay-2 use>serve" or
// "serve>use"), nonce = IV xor the record counter; every `rekey_every` records key and IV become
// HKDF(key || IV, "tn-relay-5 rekey"), on both ends in step (no message).
// With Cipher::none there is no key and no AEAD: records are framed only.
class RecordCipher {
public:
    RecordCipher(Cipher c, const LinkKey& key, Side sender, bool encrypt, std::uint64_t rekey_every = kRekeyRecords);
    RecordCipher(RecordCipher&&) noexcept = default;
    RecordCipher& operator=(RecordCipher&&) noexcept = default;
    ~RecordCipher();
    std::uint64_t counter() const { return counter_; }
    std::size_t tag() const { return tag_; }
    std::size_t overhead() const { return kRecordHeader + tag_; }  // what one record adds to its plaintext
    // Frees the AEAD context (OpenSSL's, ~1.1 KiB with its key schedule); the next record builds it
    // again from the key, IV and counter, which stay. So an idle link need not hold one per
    // direction: tn-route trims the legs it seals itself on each sweep while they wait for bytes.
    void trim() { ctx_.reset(); }
    bool trimmed() const { return !ctx_; }

protected:
    void next_nonce(std::uint8_t* nonce);
    void rekey();
    bool sealed() const { return cipher_ != Cipher::none; }
    EVP_CIPHER_CTX* ctx();  // the AEAD context, built on first use after construction or trim()
    Cipher cipher_ = Cipher::none;
    std::size_t tag_ = kTagSize;
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx_;
    std::array<std::uint8_t, 12> iv_{};
    std::uint64_t counter_ = 0;
    Bytes km_;  // this direction's key || IV now (wiped on rekey and destruction)
    bool encrypt_ = true;
    std::uint64_t rekey_every_ = kRekeyRecords, next_rekey_ = kRekeyRecords;
};

class RecordSealer : public RecordCipher {
public:
    RecordSealer(Cipher c, const LinkKey& key, Side self, std::uint64_t rekey_every = kRekeyRecords)
        : RecordCipher(c, key, self, true, rekey_every) {}
    // Writes one DATA record (1..kRecordMax plaintext bytes) to `out`, which has room for
    // plain.size() + overhead(); returns the bytes written. `out` may not overlap `plain`,
    // except in place: plain.data() == out + kRecordHeader (the pump reads into that layout).
    std::size_t seal(std::span<const std::uint8_t> plain, std::uint8_t* out);
    // The EOF record (overhead() bytes; authenticated when sealed): this direction sends nothing more. `keep`:
    // the sender keeps the link for another connection afterwards (the route, which reads headers
    // but cannot open records, parks it again only then).
    std::size_t seal_eof(std::uint8_t* out, bool keep = false);
};

class RecordOpener : public RecordCipher {
public:
    RecordOpener(Cipher c, const LinkKey& key, Side peer, std::uint64_t rekey_every = kRekeyRecords)
        : RecordCipher(c, key, peer, false, rekey_every) {}
    struct Head {
        bool eof = false;
        std::size_t plain = 0;  // plaintext length
        bool keep = false;      // an EOF whose sender keeps the link
        std::size_t tag = kTagSize;
        std::size_t size() const { return kRecordHeader + plain + tag; }  // the whole record
    };
    // Reads a record header (of records with `tag`-byte tags); throws WireError on an unknown type, an
    // empty DATA, an EOF with a length, or a length over kRecordMax (before the caller sizes anything
    // for the body).
    static Head head(std::span<const std::uint8_t> header, std::size_t tag = kTagSize);
    Head parse(std::span<const std::uint8_t> header) const { return head(header, tag_); }
    // Opens one whole record (head(...).size() bytes) into `out` (room for head.plain bytes; or in
    // place, out == record.data() + kRecordHeader, as the pump does); returns
    // the plaintext length (0 for EOF). Throws WireError on a bad tag (tampered, reordered, replayed
    // from another link or the other direction) or on anything after EOF.
    std::size_t open(std::span<const std::uint8_t> record, std::uint8_t* out);
    bool ended() const { return ended_; }

private:
    bool ended_ = false;
};

// Both directions of one sealed endpoint: `tx` seals what `self` sends, `rx` opens what the other
// side sends.
struct LinkSeal {
    LinkSeal(Cipher c, const LinkKey& key, Side self)
        : tx(c, key, self), rx(c, key, self == Side::use ? Side::serve : Side::use) {}
    RecordSealer tx;
    RecordOpener rx;
};

}  // namespace tn::relay
