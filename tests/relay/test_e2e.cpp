// The end-to-end link handshake against doc/PROTOCOL.relay.md §12: its vectors (computed independently,
// with Python's hashlib and cryptography), the codec's bounds, and every way a handshake must fail
// (another secret, a swapped ephemeral, another serve or link, a low-order key).
#include <catch2/catch.hpp>

#include "relay/e2e.hpp"

using namespace tn::relay;

namespace {
template <std::size_t N> std::array<std::uint8_t, N> seq(std::uint8_t from) {
    std::array<std::uint8_t, N> a{};
    for (std::size_t i = 0; i < N; ++i) a[i] = static_cast<std::uint8_t>(from + i);
    return a;
}
std::string hex(std::span<const std::uint8_t> b) {
    static const char* d = "0123456789abcdef";
    std::string s;
    for (auto c : b) {
        s += d[c >> 4];
        s += d[c & 15];
    }
    return s;
}
const E2eSecret kPsk = seq<32>(0x40);
const E2eContext kCtx{700, 42};
}  // namespace

TEST_CASE("e2e handshake matches the vectors of PROTOCOL.relay.md §12") {
    E2eEphemeral ei(seq<32>(0x00)), er(seq<32>(0x20));
    CHECK(hex(ei.pk) == "8f40c5adb68f25624ae5b214ea767a6ec94d829d3d7b5e1ad1ba6f3e2138285f");
    CHECK(hex(er.pk) == "358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254");
    auto init = e2e_init(kPsk, ei, kCtx);
    CHECK(hex(init.mac) == "2b9ce8ee2f9e67c7518137f4f8f6bfabef31fddf22791d5a3e93ab81609eb78a");
    E2eMsg reply;
    auto rs = e2e_respond(kPsk, er, kCtx, parse_e2e(encode_e2e(init)), reply);
    REQUIRE(rs.ok);
    CHECK(hex(reply.mac) == "54da8b37b0891014a2cad900d391dce1849088a6d4baa9a2954f8f86c2c18991");
    CHECK(hex(rs.key) == "ebfaf2c23e6766773acbe87dbf96cd8079c7998cabf4b8e0dece7022fb66db51");
    auto us = e2e_finish(kPsk, ei, kCtx, parse_e2e(encode_e2e(reply)));
    REQUIRE(us.ok);
    CHECK(us.key == rs.key);
    CHECK(format_e2e_secret(kPsk) == "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=");
}

TEST_CASE("the derived key seals records both ways through the record layer") {
    E2eEphemeral ei, er;
    E2eMsg reply;
    auto rs = e2e_respond(kPsk, er, kCtx, e2e_init(kPsk, ei, kCtx), reply);
    auto us = e2e_finish(kPsk, ei, kCtx, reply);
    REQUIRE((rs.ok && us.ok));
    LinkSeal u(kE2eCipher, us.key, Side::use), s(kE2eCipher, rs.key, Side::serve);
    Bytes plain{'h', 'i'}, rec(2 + kRecordOverhead), out(2);
    rec.resize(u.tx.seal(plain, rec.data()));
    CHECK(s.rx.open(rec, out.data()) == 2);
    CHECK(out == plain);
}

TEST_CASE("a handshake fails for another secret, a swapped key, another serve or link") {
    E2eEphemeral ei, er, mallory;
    auto other = kPsk;
    other[0] ^= 1;
    E2eMsg reply;
    SECTION("the serving vnet has another secret") { CHECK(!e2e_respond(other, er, kCtx, e2e_init(kPsk, ei, kCtx), reply).ok); }
    SECTION("the route swaps the using side's ephemeral") {
        auto init = e2e_init(kPsk, ei, kCtx);
        init.eph = mallory.pk;
        CHECK(!e2e_respond(kPsk, er, kCtx, init, reply).ok);
    }
    SECTION("the route swaps the serving side's ephemeral") {
        REQUIRE(e2e_respond(kPsk, er, kCtx, e2e_init(kPsk, ei, kCtx), reply).ok);
        reply.eph = mallory.pk;
        CHECK(!e2e_finish(kPsk, ei, kCtx, reply).ok);
    }
    SECTION("the using side has another secret: the reply does not check") {
        REQUIRE(e2e_respond(kPsk, er, kCtx, e2e_init(kPsk, ei, kCtx), reply).ok);
        CHECK(!e2e_finish(other, ei, kCtx, reply).ok);
    }
    SECTION("a message made for another serve or link") {
        CHECK(!e2e_respond(kPsk, er, {701, 42}, e2e_init(kPsk, ei, kCtx), reply).ok);
        REQUIRE(e2e_respond(kPsk, er, kCtx, e2e_init(kPsk, ei, kCtx), reply).ok);
        CHECK(!e2e_finish(kPsk, ei, {700, 43}, reply).ok);
    }
    SECTION("a low-order ephemeral (all zero) is refused, not turned into a known key") {
        // Only a holder of the secret can make the MAC; even then the zero point must not pass.
        auto init = e2e_init(kPsk, ei, kCtx);
        init.eph = E2ePublic{};
        init.mac = e2e_init(kPsk, ei, kCtx).mac;  // wrong for the zero key: refused by the MAC
        CHECK(!e2e_respond(kPsk, er, kCtx, init, reply).ok);
        // With the right MAC over the zero key, the DH refuses it.
        E2eEphemeral fake(seq<32>(0x01));
        fake.pk = E2ePublic{};
        auto forged = e2e_init(kPsk, fake, kCtx);
        auto r = e2e_respond(kPsk, er, kCtx, forged, reply);
        CHECK(!r.ok);
        CHECK(r.why == "a weak ephemeral key");
    }
}

TEST_CASE("the handshake codec takes exactly one message of version 1") {
    E2eEphemeral e;
    auto b = encode_e2e(e2e_init(kPsk, e, kCtx));
    CHECK(parse_e2e(b).eph == e.pk);
    CHECK_THROWS_AS(parse_e2e(std::span(b).first(kE2eMsgSize - 1)), WireError);
    Bytes longer(b.begin(), b.end());
    longer.push_back(0);
    CHECK_THROWS_AS(parse_e2e(longer), WireError);
    b[0] = 2;
    CHECK_THROWS_AS(parse_e2e(b), WireError);
    CHECK_THROWS_AS(parse_e2e(Bytes{}), WireError);
}

TEST_CASE("e2e secrets are exactly 32 bytes of base64") {
    auto s = random_e2e_secret();
    auto text = format_e2e_secret(s);
    CHECK(text.size() == 44);
    CHECK(parse_e2e_secret(text) == s);
    CHECK(parse_e2e_secret(text + "\n") == s);
    CHECK(!parse_e2e_secret("correct horse battery staple"));
    CHECK(!parse_e2e_secret(text.substr(0, 43)));
    CHECK(!parse_e2e_secret(format_e2e_secret(s).substr(0, 40) + "!!!="));
    CHECK(!parse_e2e_secret(""));
    CHECK(random_e2e_secret() != s);
}

TEST_CASE("the cipher byte's e2e flag keeps the low bits' meaning") {
    CHECK(!is_e2e(1));
    CHECK(is_e2e(0x81));
    CHECK(base_cipher(0x81) == Cipher::aes128_gcm);
    CHECK(link_tag_size(0x80) == kTagSize);
    CHECK(link_tag_size(0) == 0);
    CHECK(e2e_outer_cipher(0x80) == Cipher::aes256_gcm);
    CHECK(e2e_outer_cipher(0x82) == Cipher::aes256_gcm);
    CHECK(e2e_outer_cipher(0x81) == Cipher::aes128_gcm);
}
