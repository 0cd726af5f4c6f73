// The test vectors of doc/PROTOCOL.tun.md §8: recomputed here byte for byte, and looked up in the
// document so the two can never drift apart.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "tun/cookie.hpp"
#include "tun_test_util.hpp"

using namespace tn::tun;
using namespace tn::tun::test;

namespace {

struct Vectors {
    std::string init_static_pub, resp_static_pub, initiation, response, init_send, init_recv, data;
    std::string cookie, cookie_reply, mac2;
    std::string psk_response, psk_init_send, psk_init_recv;
    std::string aes_initiation, aes_response, aes_chacha_response, aes_data;
};

// Revision 5: the same keys, indices and time with the AES-256-GCM offer; the response choosing it,
// the one choosing ChaCha20-Poly1305 (a revision 4 responder's), and the first data message under AES.
void compute_aes(Vectors& v, const KeyPair& si, const KeyPair& sr, const KeyPair& ei, const KeyPair& er,
                 const Timestamp& ts) {
    std::uint8_t init[initiation_len], resp[response_len], chacha[response_len];
    auto ist = create_initiation(si, sr.pub, ei, ts, 0x01020304, init, true);
    REQUIRE(ist);
    auto cr = consume_initiation(sr, Bytes(init, sizeof init));
    REQUIRE(cr.state);
    CHECK(cr.state->offers_aes);
    CHECK(cr.state->ts == ts);
    auto rkp = create_response(*cr.state, er, 0x0a0b0c0d, resp, TimePoint{}, no_psk, Suite::aes256_gcm);
    REQUIRE(create_response(*cr.state, er, 0x0a0b0c0d, chacha, TimePoint{}));
    auto ikp = consume_response(*ist, si, Bytes(resp, sizeof resp), TimePoint{});
    REQUIRE(ikp);
    REQUIRE(consume_response(*ist, si, Bytes(chacha, sizeof chacha), TimePoint{}));
    REQUIRE(ikp->suite == Suite::aes256_gcm);
    REQUIRE(rkp->suite == Suite::aes256_gcm);
    std::uint8_t pkt[transport_header_len + 6 + tag_len];
    std::memcpy(pkt + transport_header_len, "tn-tun", 6);
    std::size_t n = seal(*ikp, MsgType::data, pkt, 6, TimePoint{});
    REQUIRE(n == sizeof pkt);
    v.aes_data = to_hex(Bytes(pkt, n));
    REQUIRE(open(*rkp, pkt, n, 0, TimePoint{}).len == std::size_t(6));
    v.aes_initiation = to_hex(Bytes(init, sizeof init));
    v.aes_response = to_hex(Bytes(resp, sizeof resp));
    v.aes_chacha_response = to_hex(Bytes(chacha, sizeof chacha));
}

// §8's handshake again for a peer with the pre-shared key 0x60, 0x61, …: the initiation is the same,
// the response and transport keys differ, and a side without that key cannot complete it.
void compute_psk(Vectors& v, const InitiatorState& ist, const ResponderState& rst, const KeyPair& si,
                 const KeyPair& er) {
    Key psk = fill_key(0x60);
    std::uint8_t resp[response_len];
    auto rkp = create_response(rst, er, 0x0a0b0c0d, resp, TimePoint{}, psk);
    REQUIRE(rkp);
    CHECK_FALSE(consume_response(ist, si, Bytes(resp, sizeof resp), TimePoint{}));  // no key: refused
    Key other = fill_key(0x61);
    CHECK_FALSE(consume_response(ist, si, Bytes(resp, sizeof resp), TimePoint{}, other));
    auto ikp = consume_response(ist, si, Bytes(resp, sizeof resp), TimePoint{}, psk);
    REQUIRE(ikp);
    CHECK(ikp->send == rkp->recv);
    CHECK(ikp->recv == rkp->send);
    v.psk_response = to_hex(Bytes(resp, sizeof resp));
    v.psk_init_send = to_hex(bytes(ikp->send));
    v.psk_init_recv = to_hex(bytes(ikp->recv));
}

Vectors compute() {
    KeyPair si = fixed_keypair(0x01), sr = fixed_keypair(0x40), ei = fixed_keypair(0x80), er = fixed_keypair(0xc0);
    auto wall = std::chrono::system_clock::time_point(std::chrono::seconds(1795000000)) +
                std::chrono::nanoseconds(123456789);
    TimePoint now{};
    std::uint8_t init[initiation_len], resp[response_len];
    auto ist = create_initiation(si, sr.pub, ei, make_timestamp(wall), 0x01020304, init);
    REQUIRE(ist);
    auto cr = consume_initiation(sr, Bytes(init, sizeof init));
    REQUIRE(cr.state);
    CHECK(cr.state->remote_static == si.pub);
    // A responder that would choose AES answers this initiation (no offer) as revision 4 did.
    auto rkp = create_response(*cr.state, er, 0x0a0b0c0d, resp, now, no_psk, Suite::aes256_gcm);
    REQUIRE(rkp);
    CHECK(rkp->suite == Suite::chacha20_poly1305);
    auto ikp = consume_response(*ist, si, Bytes(resp, sizeof resp), now);
    REQUIRE(ikp);
    CHECK(ikp->send == rkp->recv);
    CHECK(ikp->recv == rkp->send);
    CHECK(ikp->remote_index == 0x0a0b0c0d);
    // The first transport packet: the initiator's keepalive-confirmation carrying "tn-tun" (6 bytes).
    std::uint8_t pkt[transport_header_len + 6 + tag_len];
    std::memcpy(pkt + transport_header_len, "tn-tun", 6);
    std::size_t n = seal(*ikp, MsgType::data, pkt, 6, now);
    REQUIRE(n == sizeof pkt);
    std::string data_hex = to_hex(Bytes(pkt, n));
    auto r = open(*rkp, pkt, n, 0, now);
    REQUIRE(r.len == std::size_t(6));
    CHECK(std::memcmp(pkt + transport_header_len, "tn-tun", 6) == 0);
    Vectors v;
    v.init_static_pub = to_hex(bytes(si.pub));
    v.resp_static_pub = to_hex(bytes(sr.pub));
    v.initiation = to_hex(Bytes(init, sizeof init));
    v.response = to_hex(Bytes(resp, sizeof resp));
    v.init_send = to_hex(bytes(ikp->send));
    v.init_recv = to_hex(bytes(ikp->recv));
    v.data = data_hex;
    compute_psk(v, *ist, *cr.state, si, er);
    if (aes_gcm_available()) compute_aes(v, si, sr, ei, er, make_timestamp(wall));  // needs AES-NI
    // Cookie reply (§6) to that initiation from 192.0.2.1:40001 with secret 0x20.. and nonce 0x50..
    CookieSource src;
    src.len = 6;
    const std::uint8_t addr[6] = {192, 0, 2, 1, 0x9c, 0x41};
    std::memcpy(src.b.data(), addr, 6);
    Cookie cookie = make_cookie(fill_key(0x20), src);
    std::array<std::uint8_t, cookie_nonce_len> nonce;
    for (std::size_t i = 0; i < nonce.size(); ++i) nonce[i] = static_cast<std::uint8_t>(0x50 + i);
    std::uint8_t reply[cookie_len];
    write_cookie_reply(sr.pub, cookie, Bytes(init, sizeof init), nonce, reply);
    REQUIRE(classify(Bytes(reply, sizeof reply)));
    Mac sent_mac1;
    std::memcpy(sent_mac1.data(), init + init_off::mac1, 16);
    auto opened = open_cookie_reply(sr.pub, Bytes(reply, sizeof reply), sent_mac1);
    REQUIRE(opened);
    CHECK(*opened == cookie);
    Mac m2 = make_mac2(cookie, Bytes(init, sizeof init));
    v.cookie = to_hex(Bytes(cookie.data(), cookie.size()));
    v.cookie_reply = to_hex(Bytes(reply, sizeof reply));
    v.mac2 = to_hex(Bytes(m2.data(), m2.size()));
    return v;
}

std::string document() {
    std::ifstream f(std::string(TN_SOURCE_ROOT) + "/doc/PROTOCOL.tun.md");
    std::stringstream ss;
    ss << f.rdbuf();
    std::string s = ss.str(), out;
    for (char c : s)
        if (c != '\n' && c != ' ') out += c;  // hex may be wrapped in the document
    return out;
}

}  // namespace

TEST_CASE("handshake test vectors match the document") {
    Vectors v = compute();
    std::string doc = document();
    REQUIRE(!doc.empty());
    for (const auto* hex : {&v.init_static_pub, &v.resp_static_pub, &v.initiation, &v.response, &v.init_send,
                            &v.init_recv, &v.data, &v.cookie, &v.cookie_reply, &v.mac2, &v.psk_response,
                            &v.psk_init_send, &v.psk_init_recv, &v.aes_initiation, &v.aes_response,
                            &v.aes_chacha_response, &v.aes_data}) {
        if (hex->empty()) continue;  // the AES vectors on a CPU without AES-NI
        INFO(*hex);
        CHECK(doc.find(*hex) != std::string::npos);
    }
}
