#include "base/base64.hpp"

#include <openssl/evp.h>

#include <array>

namespace tn {

std::string base64_encode(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');  // EVP_EncodeBlock adds a NUL
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    // EVP_DecodeBlock skips leading and trailing blanks and takes '=' anywhere in the last quad: check
    // the alphabet first, with one or two '=' only at the very end.
    // One table look-up a byte: a 1 MiB put through serve --stdio is 1.4 MB of it.
    // The table holds each letter's 6-bit value, 64 for a byte outside the alphabet.
    static constexpr auto value = [] {
        std::array<unsigned char, 256> t{};
        t.fill(64);
        std::string_view letters("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
        for (std::size_t i = 0; i < letters.size(); ++i)
            t[static_cast<unsigned char>(letters[i])] = static_cast<unsigned char>(i);
        return t;
    }();
    auto value_of = [&](char c) { return value[static_cast<unsigned char>(c)]; };
    std::size_t pad = 0;
    while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
    bool ok = true;
    for (std::size_t i = 0; i < text.size() - pad; ++i) ok &= value_of(text[i]) < 64;
    if (!ok) return std::nullopt;
    // The bits the padding leaves over must be zero ("Zm9=" is not "Zm8="): otherwise two texts decode
    // to the same bytes and a decode-encode round trip changes the text (RFC 4648 section 3.5).
    if (pad > 0 && (value_of(text[text.size() - 1 - pad]) & (pad == 2 ? 0x0f : 0x03)) != 0) return std::nullopt;
    std::string out(text.size() / 4 * 3 + 1, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
    if (n < 0 || static_cast<std::size_t>(n) < pad) return std::nullopt;
    out.resize(static_cast<std::size_t>(n) - pad);  // EVP_DecodeBlock counts padding as zero bytes
    return out;
}

}  // namespace tn
