// Cookie replies and mac2: XChaCha20-Poly1305 and keyed BLAKE2b from libsodium.
#include "tun/cookie.hpp"

#include <sodium.h>

#include <cstring>
#include <string_view>

namespace tn::tun {
namespace {

constexpr std::string_view cookie_label = "cookie--";
Key cookie_key(const Key& server_pub) { return hash({bytes(cookie_label), bytes(server_pub)}); }

}  // namespace

Cookie make_cookie(const Key& secret, const CookieSource& source) {
    Mac m = mac(secret, source.bytes());
    Cookie c;
    std::memcpy(c.data(), m.data(), c.size());
    return c;
}

Mac make_mac2(const Cookie& cookie, Bytes init) {
    crypto_init();
    Mac out;
    crypto_generichash(out.data(), out.size(), init.data(), init.size(), cookie.data(), cookie.size());
    return out;
}

void write_cookie_reply(const Key& server_pub, const Cookie& cookie, Bytes init,
                        const std::array<std::uint8_t, cookie_nonce_len>& nonce, std::uint8_t* out) {
    crypto_init();
    out[0] = static_cast<std::uint8_t>(MsgType::cookie);
    out[1] = out[2] = out[3] = 0;
    std::memcpy(out + cookie_off::receiver, init.data() + init_off::sender, 4);
    std::memcpy(out + cookie_off::nonce, nonce.data(), nonce.size());
    Key k = cookie_key(server_pub);
    // The AD is the initiation's mac1: only the sender of that initiation can use the reply.
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + cookie_off::enc_cookie, nullptr, cookie.data(), cookie.size(),
                                               init.data() + init_off::mac1, 16, nullptr, nonce.data(), k.data());
    wipe(k.data(), k.size());
}

std::optional<Cookie> open_cookie_reply(const Key& server_pub, Bytes reply, const Mac& sent_mac1) {
    crypto_init();
    if (reply.size() != cookie_len) return std::nullopt;
    Key k = cookie_key(server_pub);
    Cookie c;
    int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(c.data(), nullptr, nullptr, reply.data() + cookie_off::enc_cookie,
                                                        cookie_len - cookie_off::enc_cookie, sent_mac1.data(),
                                                        sent_mac1.size(), reply.data() + cookie_off::nonce, k.data());
    wipe(k.data(), k.size());
    if (rc != 0) return std::nullopt;
    return c;
}

const Key& CookieJar::secret(TimePoint now) {
    if (!have_ || now - made_ >= cookie_secret_life) {
        crypto_init();
        randombytes_buf(secret_.data(), secret_.size());
        made_ = now;
        have_ = true;
    }
    return secret_;
}

bool CookieJar::mac2_ok(Bytes init, const CookieSource& source, TimePoint now) {
    if (init.size() != initiation_mac2_len) return false;
    Mac m = make_mac2(make_cookie(secret(now), source), init.first(initiation_len));
    return equal_ct(Bytes(m.data(), m.size()), init.subspan(initiation_len, 16));
}

void CookieJar::reply(const Key& server_pub, Bytes init, const CookieSource& source, TimePoint now,
                      std::uint8_t* out) {
    std::array<std::uint8_t, cookie_nonce_len> nonce;
    randombytes_buf(nonce.data(), nonce.size());
    write_cookie_reply(server_pub, make_cookie(secret(now), source), init, nonce, out);
}

}  // namespace tn::tun
