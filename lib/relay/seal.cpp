// HKDF, the key box and the AEAD record layer of sealed links, over OpenSSL EVP (AES-NI when present).
#include "relay/seal.hpp"

#include "relay/evp_algos.hpp"

#include <openssl/rand.h>

#include <cstring>
#include <string>

namespace tn::relay {

namespace {
constexpr std::uint8_t kData = 0x01, kEof = 0x02, kEofKeep = 0x03;

const EVP_CIPHER* evp(Cipher c) {
    switch (c) {
        case Cipher::aes128_gcm: return aes128_gcm_cipher();
        case Cipher::aes256_gcm: return aes256_gcm_cipher();
        case Cipher::none: break;
    }
    throw WireError("unknown link cipher " + std::to_string(static_cast<int>(c)));
}

std::size_t key_len(Cipher c) { return c == Cipher::aes256_gcm ? 32 : 16; }

void check(int ok, const char* what) {
    if (ok != 1) throw Error(ExitCode::io, std::string("OpenSSL ") + what + " failed");
}
}  // namespace

Bytes hkdf_sha256(std::span<const std::uint8_t> ikm, std::span<const std::uint8_t> salt, std::string_view info,
                  std::size_t n) {
    if (n > 255 * 32) throw Error(ExitCode::data, "HKDF output too long");
    std::array<std::uint8_t, 32> zero{};
    auto s = salt.empty() ? std::span<const std::uint8_t>(zero) : salt;  // RFC 5869: no salt = HashLen zeros
    auto prk = hmac_sha256(s, ikm);
    Bytes out, t;
    for (std::uint8_t i = 1; out.size() < n; ++i) {
        Bytes m(t);
        m.insert(m.end(), info.begin(), info.end());
        m.push_back(i);
        auto block = hmac_sha256(prk, m);
        t.assign(block.begin(), block.end());
        out.insert(out.end(), t.begin(), t.end());
    }
    OPENSSL_cleanse(prk.data(), prk.size());
    out.resize(n);
    return out;
}

LinkKey random_link_key() {
    LinkKey k{};
    if (RAND_bytes(k.data(), static_cast<int>(k.size())) != 1) throw Error(ExitCode::io, "no random bytes from OpenSSL");
    return k;
}

namespace {
// One-shot AES-256-GCM with a zero nonce: safe because every box key is used exactly once.
Bytes box_key(const Ticket& ticket, const Nonce& route_nonce, BoxWay way) {
    return hkdf_sha256(ticket, route_nonce, way == BoxWay::to_vnet ? "tn-relay-2 key box" : "tn-relay-3 open box", 32);
}
std::array<std::uint8_t, 8> be64(std::uint64_t v) {
    std::array<std::uint8_t, 8> b{};
    for (int i = 7; i >= 0; --i, v >>= 8) b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v);
    return b;
}
std::array<std::uint8_t, 9> box_aad(std::uint64_t v, Cipher c) {
    std::array<std::uint8_t, 9> a{};
    auto b = be64(v);
    std::copy(b.begin(), b.end(), a.begin());
    a[8] = static_cast<std::uint8_t>(c);
    return a;
}
}  // namespace

KeyBox seal_key_box(const Ticket& ticket, const Nonce& route_nonce, std::uint64_t aad_value, const LinkKey& key, BoxWay way,
                    Cipher cipher) {
    auto k = box_key(ticket, route_nonce, way);
    auto aad = box_aad(aad_value, cipher);
    std::array<std::uint8_t, 12> nonce{};
    KeyBox box{};
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> c(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
    int l = 0;
    check(c ? 1 : 0, "EVP_CIPHER_CTX_new");
    check(EVP_EncryptInit_ex(c.get(), aes256_gcm_cipher(), nullptr, k.data(), nonce.data()), "key box init");
    check(EVP_EncryptUpdate(c.get(), nullptr, &l, aad.data(), static_cast<int>(aad.size())), "key box aad");
    check(EVP_EncryptUpdate(c.get(), box.data(), &l, key.data(), 32), "key box seal");
    check(EVP_EncryptFinal_ex(c.get(), box.data() + 32, &l), "key box final");
    check(EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_GET_TAG, 16, box.data() + 32), "key box tag");
    return box;
}

LinkKey open_key_box(const Ticket& ticket, const Nonce& route_nonce, std::uint64_t aad_value, const KeyBox& box, BoxWay way,
                     Cipher cipher) {
    auto k = box_key(ticket, route_nonce, way);
    auto aad = box_aad(aad_value, cipher);
    std::array<std::uint8_t, 12> nonce{};
    std::array<std::uint8_t, 16> tag{};
    std::memcpy(tag.data(), box.data() + 32, 16);
    LinkKey key{};
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> c(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
    int l = 0;
    check(c ? 1 : 0, "EVP_CIPHER_CTX_new");
    check(EVP_DecryptInit_ex(c.get(), aes256_gcm_cipher(), nullptr, k.data(), nonce.data()), "key box init");
    check(EVP_DecryptUpdate(c.get(), nullptr, &l, aad.data(), static_cast<int>(aad.size())), "key box aad");
    check(EVP_DecryptUpdate(c.get(), key.data(), &l, box.data(), 32), "key box open");
    check(EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_SET_TAG, 16, tag.data()), "key box tag");
    if (EVP_DecryptFinal_ex(c.get(), key.data() + 32, &l) != 1) {
        OPENSSL_cleanse(key.data(), key.size());
        throw WireError("link key box does not open: not sealed for this session, challenge and link");
    }
    return key;
}

RecordCipher::RecordCipher(Cipher c, const LinkKey& key, Side sender, bool encrypt, std::uint64_t rekey_every)
    : cipher_(c), tag_(tag_size(c)), ctx_(nullptr, EVP_CIPHER_CTX_free), encrypt_(encrypt), rekey_every_(rekey_every),
      next_rekey_(rekey_every) {
    if (c == Cipher::none) return;
    std::string info = sender == Side::use ? "tn-relay-2 use>serve " : "tn-relay-2 serve>use ";
    info += std::to_string(static_cast<int>(c));  // a key never serves two ciphers
    km_ = hkdf_sha256(key, {}, info, key_len(c) + iv_.size());
    std::memcpy(iv_.data(), km_.data() + key_len(c), iv_.size());
}

EVP_CIPHER_CTX* RecordCipher::ctx() {
    if (ctx_) return ctx_.get();
    ctx_.reset(EVP_CIPHER_CTX_new());
    check(ctx_ ? 1 : 0, "EVP_CIPHER_CTX_new");
    const EVP_CIPHER* e = evp(cipher_);
    if (encrypt_) check(EVP_EncryptInit_ex(ctx_.get(), e, nullptr, km_.data(), nullptr), "record key");
    else check(EVP_DecryptInit_ex(ctx_.get(), e, nullptr, km_.data(), nullptr), "record key");
    return ctx_.get();
}

RecordCipher::~RecordCipher() {
    if (!km_.empty()) OPENSSL_cleanse(km_.data(), km_.size());
}

void RecordCipher::rekey() {
    auto next = hkdf_sha256(km_, {}, "tn-relay-5 rekey", km_.size());
    OPENSSL_cleanse(km_.data(), km_.size());
    km_ = std::move(next);
    auto klen = km_.size() - iv_.size();
    std::memcpy(iv_.data(), km_.data() + klen, iv_.size());
    // ctx() keys the context, so one built after this takes the new key: once per 2^24 records at most.
    trim();
    next_rekey_ += rekey_every_;
}

void RecordCipher::next_nonce(std::uint8_t* nonce) {
    // A counter that wrapped would reuse a nonce: the link ends first (2^64 records never happen).
    if (counter_ == UINT64_MAX) throw WireError("record counter exhausted");
    if (counter_ == next_rekey_) rekey();  // one compare per record
    std::memcpy(nonce, iv_.data(), 12);
    auto c = be64(counter_++);
    for (std::size_t i = 0; i < 8; ++i) nonce[4 + i] ^= c[i];
}

std::size_t RecordSealer::seal(std::span<const std::uint8_t> plain, std::uint8_t* out) {
    if (plain.empty() || plain.size() > kRecordMax) throw Error(ExitCode::data, "record plaintext size out of range");
    auto n = plain.size();
    out[0] = kData;
    out[1] = static_cast<std::uint8_t>(n >> 16);
    out[2] = static_cast<std::uint8_t>(n >> 8);
    out[3] = static_cast<std::uint8_t>(n);
    if (!sealed()) {
        if (plain.data() != out + kRecordHeader) std::memmove(out + kRecordHeader, plain.data(), n);
        ++counter_;
        return kRecordHeader + n;
    }
    std::uint8_t nonce[12];
    next_nonce(nonce);
    int l = 0, l2 = 0;
    auto* c = ctx();
    check(EVP_EncryptInit_ex(c, nullptr, nullptr, nullptr, nonce), "record nonce");
    check(EVP_EncryptUpdate(c, nullptr, &l, out, kRecordHeader), "record aad");
    check(EVP_EncryptUpdate(c, out + kRecordHeader, &l, plain.data(), static_cast<int>(n)), "record seal");
    check(EVP_EncryptFinal_ex(c, out + kRecordHeader + l, &l2), "record final");
    check(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, kTagSize, out + kRecordHeader + n), "record tag");
    return kRecordHeader + n + kTagSize;
}

std::size_t RecordSealer::seal_eof(std::uint8_t* out, bool keep) {
    out[0] = keep ? kEofKeep : kEof;
    out[1] = out[2] = out[3] = 0;
    if (!sealed()) {
        ++counter_;
        return kRecordHeader;
    }
    std::uint8_t nonce[12];
    next_nonce(nonce);
    int l = 0;
    auto* c = ctx();
    check(EVP_EncryptInit_ex(c, nullptr, nullptr, nullptr, nonce), "record nonce");
    check(EVP_EncryptUpdate(c, nullptr, &l, out, kRecordHeader), "record aad");
    check(EVP_EncryptFinal_ex(c, out + kRecordHeader, &l), "record final");
    check(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, kTagSize, out + kRecordHeader), "record tag");
    return kRecordOverhead;
}

RecordOpener::Head RecordOpener::head(std::span<const std::uint8_t> h, std::size_t tag) {
    if (h.size() < kRecordHeader) throw WireError("short record header");
    std::size_t n = (std::size_t(h[1]) << 16) | (std::size_t(h[2]) << 8) | h[3];
    if (h[0] == kEof || h[0] == kEofKeep) {
        if (n != 0) throw WireError("EOF record with a length");
        return Head{true, 0, h[0] == kEofKeep, tag};
    }
    if (h[0] != kData) throw WireError("unknown record type " + std::to_string(h[0]));
    if (n == 0) throw WireError("empty data record");
    if (n > kRecordMax) throw WireError("oversized record: " + std::to_string(n) + " bytes (cap " + std::to_string(kRecordMax) + ")");
    return Head{false, n, false, tag};
}

std::size_t RecordOpener::open(std::span<const std::uint8_t> rec, std::uint8_t* out) {
    if (ended_) throw WireError("record after EOF");
    auto h = parse(rec);
    if (rec.size() != h.size()) throw WireError("record size does not match its header");
    if (!sealed()) {
        if (h.plain && out != rec.data() + kRecordHeader) std::memmove(out, rec.data() + kRecordHeader, h.plain);
        ++counter_;
        ended_ = h.eof;
        return h.plain;
    }
    std::uint8_t nonce[12];
    next_nonce(nonce);
    std::uint8_t tag[kTagSize];
    std::memcpy(tag, rec.data() + kRecordHeader + h.plain, kTagSize);
    int l = 0, l2 = 0;
    auto* c = ctx();
    check(EVP_DecryptInit_ex(c, nullptr, nullptr, nullptr, nonce), "record nonce");
    check(EVP_DecryptUpdate(c, nullptr, &l, rec.data(), kRecordHeader), "record aad");
    l = 0;  // the AAD update counted its 4 header bytes; only plaintext may move `out` (null for EOF)
    if (h.plain) check(EVP_DecryptUpdate(c, out, &l, rec.data() + kRecordHeader, static_cast<int>(h.plain)), "record open");
    check(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, kTagSize, tag), "record tag");
    if (EVP_DecryptFinal_ex(c, out + l, &l2) != 1)
        throw WireError("record " + std::to_string(counter_ - 1) + " failed authentication (tampered, reordered or not of this link)");
    if (h.eof) ended_ = true;
    return h.plain;
}

}  // namespace tn::relay
