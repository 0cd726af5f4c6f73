// Transport encryption with counter nonces and the replay window of PROTOCOL.tun.md §4.
#include "tun/session.hpp"

namespace tn::tun {

bool ReplayWindow::check(std::uint64_t c) const {
    if (c >= reject_after_messages) return false;
    if (c >= next_) return true;                 // ahead of everything seen
    if (next_ - 1 - c >= window) return false;   // fell out of the window behind
    return !((bits_[(c / 64) % words] >> (c % 64)) & 1);
}

bool ReplayWindow::update(std::uint64_t c) {
    if (!check(c)) return false;
    if (c >= next_) {
        // Clear the words the window slides over (at most all of them).
        std::uint64_t old_word = next_ == 0 ? 0 : (next_ - 1) / 64;
        std::uint64_t new_word = c / 64;
        if (next_ == 0) {
            bits_.fill(0);
        } else {
            std::uint64_t steps = new_word - old_word;
            if (steps > words) steps = words;
            for (std::uint64_t i = 1; i <= steps; ++i) bits_[(old_word + i) % words] = 0;
        }
        next_ = c + 1;
    }
    bits_[(c / 64) % words] |= std::uint64_t(1) << (c % 64);
    return true;
}

std::size_t seal(Keypair& kp, MsgType type, std::uint8_t* buf, std::size_t plain_len, TimePoint now) {
    if (kp.expired(now) || kp.send_counter >= reject_after_messages) return 0;
    std::uint64_t c = kp.send_counter++;
    write_transport_header(buf, type, kp.remote_index, c);
    // The header is the AD: a flipped type or receiver byte fails authentication.
    Bytes plain(buf + transport_header_len, plain_len), ad(buf, transport_header_len);
    if (kp.suite == Suite::aes256_gcm)
        aes_seal(kp.send, c, plain, ad, buf + transport_header_len);
    else
        aead_seal(kp.send, c, plain, ad, buf + transport_header_len);
    return transport_header_len + plain_len + tag_len;
}

OpenResult open(Keypair& kp, std::uint8_t* dgram, std::size_t dgram_len, std::uint64_t counter, TimePoint now) {
    if (kp.expired(now)) return {std::nullopt, OpenError::expired};
    if (!kp.replay.check(counter)) return {std::nullopt, OpenError::replay};
    std::size_t clen = dgram_len - transport_header_len;
    Bytes cipher(dgram + transport_header_len, clen), ad(dgram, transport_header_len);
    bool ok = kp.suite == Suite::aes256_gcm ? aes_open(kp.recv, counter, cipher, ad, dgram + transport_header_len)
                                            : aead_open(kp.recv, counter, cipher, ad, dgram + transport_header_len);
    if (!ok) return {std::nullopt, OpenError::auth};
    if (!kp.replay.update(counter)) return {std::nullopt, OpenError::replay};
    return {clen - tag_len, OpenError::auth};
}

}  // namespace tn::tun
