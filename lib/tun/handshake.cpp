// Noise IK message construction and checking for tn-tun (PROTOCOL.tun.md §4).
#include "tun/handshake.hpp"

#include <cstring>

#include "tun/wire.hpp"

namespace tn::tun {
namespace {

constexpr std::string_view construction = "Noise_IK_25519_ChaChaPoly_BLAKE2b";
constexpr std::string_view identifier = "tn-tun v1";
constexpr std::string_view mac1_label = "mac1----";

void init_chain(Key& ck, Key& h, const Key& responder_static) {
    ck = hash({bytes(construction)});
    h = hash({bytes(ck), bytes(identifier)});
    h = hash({bytes(h), bytes(responder_static)});
}

Key mac1_key(const Key& pub) { return hash({bytes(mac1_label), bytes(pub)}); }

void mix_hash(Key& h, Bytes b) { h = hash({bytes(h), b}); }

// ck, k = KDF2(ck, DH(priv, pub)); false on a low-order point.
bool mix_dh(Key& ck, Key* k, const Key& priv, const Key& pub) {
    Key shared, new_ck, key;
    WipeOnExit w1(shared), w2(new_ck), w3(key);
    if (!dh(shared, priv, pub)) return false;
    if (k) {
        kdf2(ck, bytes(shared), new_ck, key);
        *k = key;
    } else {
        kdf1(ck, bytes(shared), new_ck);
    }
    ck = new_ck;
    return true;
}

Keypair derive_transport(const Key& ck, bool initiator, TimePoint now) {
    Key a, b;
    kdf2(ck, Bytes(), a, b);
    Keypair kp;
    kp.send = initiator ? a : b;
    kp.recv = initiator ? b : a;
    kp.created = now;
    kp.initiator = initiator;
    wipe(a.data(), a.size());
    wipe(b.data(), b.size());
    return kp;
}

}  // namespace

Timestamp make_timestamp(std::chrono::system_clock::time_point t) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    Timestamp ts;
    put_u64(ts.data(), static_cast<std::uint64_t>(ns / 1000000000));
    put_u32(ts.data() + 8, static_cast<std::uint32_t>(ns % 1000000000));
    return ts;
}

std::optional<InitiatorState> create_initiation(const KeyPair& local, const Key& remote_static, const KeyPair& eph,
                                                const Timestamp& ts_in, std::uint32_t sender, std::uint8_t* out,
                                                bool offer_aes) {
    InitiatorState st;
    st.offered_aes = offer_aes;
    Timestamp ts = ts_in;
    if (offer_aes) ts[ts_offer_byte] |= ts_offer_aes;
    st.eph = eph;
    st.sender = sender;
    st.remote_static = remote_static;
    init_chain(st.ck, st.h, remote_static);
    std::memset(out, 0, initiation_len);
    out[0] = static_cast<std::uint8_t>(MsgType::initiation);
    put_u32(out + init_off::sender, sender);
    std::memcpy(out + init_off::ephemeral, eph.pub.data(), key_len);
    kdf1(st.ck, bytes(eph.pub), st.ck);
    mix_hash(st.h, bytes(eph.pub));
    Key k;
    WipeOnExit wk(k);
    if (!mix_dh(st.ck, &k, eph.priv, remote_static)) return std::nullopt;
    aead_seal(k, 0, bytes(local.pub), bytes(st.h), out + init_off::enc_static);
    mix_hash(st.h, Bytes(out + init_off::enc_static, key_len + tag_len));
    if (!mix_dh(st.ck, &k, local.priv, remote_static)) return std::nullopt;
    aead_seal(k, 0, Bytes(ts.data(), ts.size()), bytes(st.h), out + init_off::enc_timestamp);
    mix_hash(st.h, Bytes(out + init_off::enc_timestamp, ts.size() + tag_len));
    Mac m = mac(mac1_key(remote_static), Bytes(out, init_off::mac1));
    std::memcpy(out + init_off::mac1, m.data(), m.size());
    return st;
}

bool initiation_mac1_ok(const Key& local_pub, Bytes msg) {
    if (msg.size() != initiation_len) return false;
    Mac m = mac(mac1_key(local_pub), msg.first(init_off::mac1));
    return equal_ct(Bytes(m.data(), m.size()), msg.subspan(init_off::mac1, 16));
}

ConsumeResult consume_initiation(const KeyPair& local, Bytes msg) {
    if (!initiation_mac1_ok(local.pub, msg)) return {std::nullopt, HandshakeReject::mac1};
    ResponderState st;
    init_chain(st.ck, st.h, local.pub);
    st.remote_sender = get_u32(msg.data() + init_off::sender);
    std::memcpy(st.remote_eph.data(), msg.data() + init_off::ephemeral, key_len);
    kdf1(st.ck, bytes(st.remote_eph), st.ck);
    mix_hash(st.h, bytes(st.remote_eph));
    Key k;
    WipeOnExit wk(k);
    if (!mix_dh(st.ck, &k, local.priv, st.remote_eph)) return {std::nullopt, HandshakeReject::decrypt};
    if (!aead_open(k, 0, msg.subspan(init_off::enc_static, key_len + tag_len), bytes(st.h), st.remote_static.data()))
        return {std::nullopt, HandshakeReject::decrypt};
    mix_hash(st.h, msg.subspan(init_off::enc_static, key_len + tag_len));
    if (!mix_dh(st.ck, &k, local.priv, st.remote_static)) return {std::nullopt, HandshakeReject::decrypt};
    if (!aead_open(k, 0, msg.subspan(init_off::enc_timestamp, st.ts.size() + tag_len), bytes(st.h), st.ts.data()))
        return {std::nullopt, HandshakeReject::decrypt};
    mix_hash(st.h, msg.subspan(init_off::enc_timestamp, st.ts.size() + tag_len));
    st.offers_aes = (st.ts[ts_offer_byte] & ts_offer_aes) != 0;
    st.ts[ts_offer_byte] &= static_cast<std::uint8_t>(~ts_offer_aes);
    return {st, HandshakeReject::mac1};
}

std::optional<Keypair> create_response(const ResponderState& in, const KeyPair& eph, std::uint32_t sender,
                                       std::uint8_t* out, TimePoint now, const Key& psk, Suite suite) {
    ResponderState st = in;
    // A revision 4 initiator knows no other suite, and libsodium's AES-256-GCM needs AES-NI here.
    if (!st.offers_aes || !aes_gcm_available()) suite = Suite::chacha20_poly1305;
    std::memset(out, 0, response_len);
    out[0] = static_cast<std::uint8_t>(MsgType::response);
    out[resp_off::suite] = static_cast<std::uint8_t>(suite);
    put_u32(out + resp_off::sender, sender);
    put_u32(out + resp_off::receiver, st.remote_sender);
    std::memcpy(out + resp_off::ephemeral, eph.pub.data(), key_len);
    kdf1(st.ck, bytes(eph.pub), st.ck);
    mix_hash(st.h, bytes(eph.pub));
    // Any suite but ChaCha20-Poly1305 enters the hash, so enc_empty authenticates the choice; a ChaCha
    // response stays revision 4's byte for byte (what an older responder sends to a revision 5 offer).
    if (suite != Suite::chacha20_poly1305) mix_hash(st.h, Bytes(out + resp_off::suite, 1));
    if (!mix_dh(st.ck, nullptr, eph.priv, st.remote_eph)) return std::nullopt;
    if (!mix_dh(st.ck, nullptr, eph.priv, st.remote_static)) return std::nullopt;
    Key k;
    WipeOnExit wk(k);
    kdf2(st.ck, bytes(psk), st.ck, k);  // the pre-shared key, as WireGuard mixes it (zeros: none)
    aead_seal(k, 0, Bytes(), bytes(st.h), out + resp_off::enc_empty);
    mix_hash(st.h, Bytes(out + resp_off::enc_empty, tag_len));
    Mac m = mac(mac1_key(st.remote_static), Bytes(out, resp_off::mac1));
    std::memcpy(out + resp_off::mac1, m.data(), m.size());
    Keypair kp = derive_transport(st.ck, false, now);
    kp.local_index = sender;
    kp.remote_index = st.remote_sender;
    kp.suite = suite;
    wipe(st.ck.data(), st.ck.size());
    return kp;
}

std::optional<Keypair> consume_response(const InitiatorState& in, const KeyPair& local, Bytes msg, TimePoint now,
                                        const Key& psk) {
    if (msg.size() != response_len) return std::nullopt;
    Mac m = mac(mac1_key(local.pub), msg.first(resp_off::mac1));
    if (!equal_ct(Bytes(m.data(), m.size()), msg.subspan(resp_off::mac1, 16))) return std::nullopt;
    if (get_u32(msg.data() + resp_off::receiver) != in.sender) return std::nullopt;
    std::uint8_t suite = msg[resp_off::suite];
    // Revision 4 responses carry 0 and leave the hash alone; an initiator that offered nothing takes
    // nothing else (classify() let the byte through for this check).
    if (suite > static_cast<std::uint8_t>(Suite::aes256_gcm) || (suite != 0 && !in.offered_aes)) return std::nullopt;
    InitiatorState st = in;
    Key re;
    std::memcpy(re.data(), msg.data() + resp_off::ephemeral, key_len);
    kdf1(st.ck, bytes(re), st.ck);
    mix_hash(st.h, bytes(re));
    if (suite != 0) mix_hash(st.h, msg.subspan(resp_off::suite, 1));
    if (!mix_dh(st.ck, nullptr, st.eph.priv, re)) return std::nullopt;
    if (!mix_dh(st.ck, nullptr, local.priv, re)) return std::nullopt;
    Key k;
    WipeOnExit wk(k);
    kdf2(st.ck, bytes(psk), st.ck, k);
    std::uint8_t none[1];
    if (!aead_open(k, 0, msg.subspan(resp_off::enc_empty, tag_len), bytes(st.h), none)) return std::nullopt;
    Keypair kp = derive_transport(st.ck, true, now);
    kp.local_index = in.sender;
    kp.remote_index = get_u32(msg.data() + resp_off::sender);
    kp.suite = static_cast<Suite>(suite);
    wipe(st.ck.data(), st.ck.size());
    return kp;
}

}  // namespace tn::tun
