// SHA-256, constant-time compare and wiping over OpenSSL (see digest.hpp).
#include "relay/digest.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base/error.hpp"
#include "relay/evp_algos.hpp"

namespace tn::relay {

Digest256 sha256(std::string_view data) {
    Digest256 md{};
    unsigned int n = 0;
    if (EVP_Digest(data.data(), data.size(), md.data(), &n, sha256_md(), nullptr) != 1 || n != md.size())
        throw Error(ExitCode::io, "SHA-256 failed in OpenSSL");
    return md;
}

bool equal_bytes(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void wipe(std::span<std::uint8_t> bytes) {
    OPENSSL_cleanse(bytes.data(), bytes.size());
}

}  // namespace tn::relay
