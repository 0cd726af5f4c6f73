// Pre-fetched OpenSSL algorithms and HMAC-SHA256 (see evp_algos.hpp).
#include "relay/evp_algos.hpp"

#include <openssl/crypto.h>

#include <array>
#include <memory>

#include "base/error.hpp"

namespace tn::relay {

namespace {
template <class T> T* fetched(T* p, const char* name) {
    if (!p) throw Error(ExitCode::io, std::string("OpenSSL has no ") + name);
    return p;
}
}  // namespace

const EVP_MD* sha256_md() {
    static const EVP_MD* md = fetched(EVP_MD_fetch(nullptr, "SHA256", nullptr), "SHA256");
    return md;
}
const EVP_CIPHER* aes128_gcm_cipher() {
    static const EVP_CIPHER* c = fetched(EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr), "AES-128-GCM");
    return c;
}
const EVP_CIPHER* aes256_gcm_cipher() {
    static const EVP_CIPHER* c = fetched(EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr), "AES-256-GCM");
    return c;
}

Mac hmac_sha256(std::span<const std::uint8_t> key, std::span<const std::uint8_t> msg) {
    constexpr std::size_t kBlock = 64;
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> c(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    std::array<std::uint8_t, kBlock> k{}, pad{};
    Mac inner{}, out{};
    unsigned int n = 0;
    bool ok = c != nullptr;
    if (ok && key.size() > kBlock)  // RFC 2104: a long key is hashed first
        ok = EVP_DigestInit_ex(c.get(), sha256_md(), nullptr) == 1 && EVP_DigestUpdate(c.get(), key.data(), key.size()) == 1 &&
             EVP_DigestFinal_ex(c.get(), k.data(), &n) == 1;
    else if (!key.empty())
        std::copy(key.begin(), key.end(), k.begin());
    for (std::size_t i = 0; i < kBlock; ++i) pad[i] = k[i] ^ 0x36;
    ok = ok && EVP_DigestInit_ex(c.get(), sha256_md(), nullptr) == 1 && EVP_DigestUpdate(c.get(), pad.data(), kBlock) == 1 &&
         EVP_DigestUpdate(c.get(), msg.data(), msg.size()) == 1 && EVP_DigestFinal_ex(c.get(), inner.data(), &n) == 1;
    for (std::size_t i = 0; i < kBlock; ++i) pad[i] = k[i] ^ 0x5c;
    ok = ok && EVP_DigestInit_ex(c.get(), sha256_md(), nullptr) == 1 && EVP_DigestUpdate(c.get(), pad.data(), kBlock) == 1 &&
         EVP_DigestUpdate(c.get(), inner.data(), inner.size()) == 1 && EVP_DigestFinal_ex(c.get(), out.data(), &n) == 1;
    OPENSSL_cleanse(k.data(), k.size());
    OPENSSL_cleanse(pad.data(), pad.size());
    OPENSSL_cleanse(inner.data(), inner.size());
    if (!ok) throw Error(ExitCode::io, "HMAC-SHA256 failed in OpenSSL");
    return out;
}

}  // namespace tn::relay
