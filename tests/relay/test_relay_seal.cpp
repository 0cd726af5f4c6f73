// The sealed-link record layer against doc/PROTOCOL.relay.md §8: HKDF vectors, key boxes, round
// trips, and every way a record can be wrong (tampered, reordered, replayed, wrong direction,
// truncated, oversized).
#include <catch2/catch.hpp>

#include <algorithm>

#include "relay/auth.hpp"
#include "relay/digest.hpp"
#include "relay/evp_algos.hpp"
#include "relay/seal.hpp"

using namespace tn::relay;

namespace {
Bytes hex(const std::string& h) {
    Bytes b;
    for (std::size_t i = 0; i + 1 < h.size(); i += 2) b.push_back(static_cast<std::uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
    return b;
}
LinkKey key_of(std::uint8_t v) {
    LinkKey k{};
    k.fill(v);
    return k;
}
Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes seal(RecordSealer& s, const Bytes& plain) {
    Bytes out(plain.size() + kRecordOverhead);
    out.resize(s.seal(plain, out.data()));
    return out;
}
Bytes open(RecordOpener& o, const Bytes& rec) {
    Bytes out(std::max<std::size_t>(1, rec.size()));
    out.resize(o.open(rec, out.data()));
    return out;
}
}  // namespace

TEST_CASE("HKDF-SHA256 matches RFC 5869 test case 1") {
    auto ikm = hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
    auto salt = hex("000102030405060708090a0b0c");
    auto info = hex("f0f1f2f3f4f5f6f7f8f9");
    auto okm = hkdf_sha256(ikm, salt, std::string_view(reinterpret_cast<const char*>(info.data()), info.size()), 42);
    CHECK(okm == hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"));
}

TEST_CASE("a key box opens only for its ticket, challenge and link") {
    Ticket t{};
    t[0] = 1;
    Nonce nr{};
    nr[0] = 2;
    auto k = random_link_key();
    const auto to_vnet = BoxWay::to_vnet;
    const auto aes = Cipher::aes128_gcm;
    auto box = seal_key_box(t, nr, 42, k, to_vnet, aes);
    CHECK(open_key_box(t, nr, 42, box, to_vnet, aes) == k);
    // The cipher byte of the frame is covered: a box never opens under another one.
    CHECK_THROWS_AS(open_key_box(t, nr, 42, box, to_vnet, Cipher::aes256_gcm), WireError);
    CHECK(!std::equal(k.begin(), k.end(), box.begin()));  // the key itself is not in the box
    Ticket t2 = t;
    t2[1] = 1;
    Nonce nr2 = nr;
    nr2[1] = 1;
    CHECK_THROWS_AS(open_key_box(t2, nr, 42, box, to_vnet, aes), WireError);
    CHECK_THROWS_AS(open_key_box(t, nr2, 42, box, to_vnet, aes), WireError);
    CHECK_THROWS_AS(open_key_box(t, nr, 43, box, to_vnet, aes), WireError);
    auto bad = box;
    bad[3] ^= 1;
    CHECK_THROWS_AS(open_key_box(t, nr, 42, bad, to_vnet, aes), WireError);
}

namespace {
std::string hex(const Mac& m) {
    static const char* d = "0123456789abcdef";
    std::string s;
    for (auto b : m) {
        s += d[b >> 4];
        s += d[b & 15];
    }
    return s;
}
}  // namespace

TEST_CASE("HMAC-SHA256 matches RFC 4231, short and longer-than-a-block keys") {
    CHECK(hex(hmac_sha256(text("Jefe"), text("what do ya want for nothing?"))) ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    Bytes long_key(131, 0xaa);
    CHECK(hex(hmac_sha256(long_key, text("Test Using Larger Than Block-Size Key - Hash Key First"))) ==
          "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    Bytes key20(20, 0x0b);
    CHECK(hex(hmac_sha256(key20, text("Hi There"))) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

// Vectors computed independently (Python hmac + python3-cryptography, from PROTOCOL.relay.md §9).
TEST_CASE("key box vectors of protocol version 5: the cipher byte is in the associated data") {
    Ticket t{};
    t[0] = 1;
    Nonce nr{};
    nr[0] = 2;
    LinkKey k{};
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(100 + i);
    auto hexs = [](const KeyBox& b) {
        static const char* d = "0123456789abcdef";
        std::string s;
        for (auto x : b) {
            s += d[x >> 4];
            s += d[x & 15];
        }
        return s;
    };
    CHECK(hexs(seal_key_box(t, nr, 42, k, BoxWay::to_vnet, Cipher::aes128_gcm)) ==
          "e203e0fc41e0fab80f44df376ccf811dfec31b8a0d670758ace4aed6b86814f7be73688a47c4ea57c43ede59865dfc7b");
    CHECK(hexs(seal_key_box(t, nr, 42, k, BoxWay::to_route, Cipher::aes128_gcm)) ==
          "13f65e036b82ccd622d08ba024f1182a3bee63bf31f4798ad829697f4571d11c23f6cc6e2b45031c5ccab7387114223b");
}

TEST_CASE("a box going to the route never opens as one going to a vnet, and the other way round") {
    Ticket t{};
    Nonce nr{};
    nr[5] = 7;
    auto k = random_link_key();
    const auto aes = Cipher::aes128_gcm;
    auto up = seal_key_box(t, nr, 700, k, BoxWay::to_route, aes);
    CHECK(open_key_box(t, nr, 700, up, BoxWay::to_route, aes) == k);
    CHECK_THROWS_AS(open_key_box(t, nr, 700, up, BoxWay::to_vnet, aes), WireError);
    auto down = seal_key_box(t, nr, 700, k, BoxWay::to_vnet, aes);
    CHECK_THROWS_AS(open_key_box(t, nr, 700, down, BoxWay::to_route, aes), WireError);
    CHECK(up != down);
}

TEST_CASE("a reused link's challenge steps to a new one, the same on both ends") {
    Nonce nr{};
    nr[0] = 1;
    auto n1 = next_challenge(nr);
    CHECK(n1 == next_challenge(nr));
    CHECK(n1 != nr);
    CHECK(next_challenge(n1) != n1);
    CHECK(next_challenge(n1) != nr);
}

TEST_CASE("records round-trip both ways with both ciphers, up to the cap") {
    for (auto c : {Cipher::aes128_gcm, Cipher::aes256_gcm}) {
        LinkSeal use(c, key_of(7), Side::use), serve(c, key_of(7), Side::serve);
        for (std::size_t n : {std::size_t(1), std::size_t(100), std::size_t(16384), kRecordMax}) {
            Bytes p(n);
            for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(i * 31 + n);
            auto r = seal(use.tx, p);
            CHECK(r.size() == n + kRecordOverhead);
            CHECK(r[0] == 0x01);
            CHECK(((std::size_t(r[1]) << 16) | (std::size_t(r[2]) << 8) | r[3]) == n);
            if (n >= 16) CHECK(std::search(r.begin(), r.end(), p.begin(), p.begin() + 16) == r.end());
            CHECK(open(serve.rx, r) == p);
            CHECK(open(use.rx, seal(serve.tx, p)) == p);
        }
        CHECK(use.tx.counter() == 4);
        CHECK(serve.rx.counter() == 4);
        Bytes e(kRecordOverhead);
        CHECK(use.tx.seal_eof(e.data()) == kRecordOverhead);
        CHECK(open(serve.rx, e).empty());
        CHECK(serve.rx.ended());
        // After EOF nothing more is accepted, not even a valid record.
        CHECK_THROWS_WITH(open(serve.rx, seal(use.tx, text("late"))), Catch::Contains("after EOF"));
    }
}

TEST_CASE("plain links' records (Cipher::none): the same framing in clear, with no tag") {
    LinkSeal use(Cipher::none, LinkKey{}, Side::use), serve(Cipher::none, LinkKey{}, Side::serve);
    CHECK(use.tx.overhead() == kRecordHeader);
    for (std::size_t n : {std::size_t(1), std::size_t(300), kRecordMax}) {
        Bytes p(n);
        for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(i * 13 + 1);
        auto r = seal(use.tx, p);
        REQUIRE(r.size() == n + kRecordHeader);
        CHECK(r[0] == 0x01);
        CHECK(((std::size_t(r[1]) << 16) | (std::size_t(r[2]) << 8) | r[3]) == n);
        CHECK(Bytes(r.begin() + kRecordHeader, r.end()) == p);  // in clear
        CHECK(RecordOpener::head(r, 0).size() == r.size());
        CHECK(open(serve.rx, r) == p);
        // In place, as the pump does it.
        Bytes buf(n + kRecordHeader);
        std::copy(p.begin(), p.end(), buf.begin() + kRecordHeader);
        CHECK(serve.tx.seal(std::span(buf.data() + kRecordHeader, n), buf.data()) == r.size());
        CHECK(use.rx.open(buf, buf.data() + kRecordHeader) == n);
        CHECK(Bytes(buf.begin() + kRecordHeader, buf.end()) == p);
    }
    // A record whose size disagrees with its header (a sealed one, with its tag) is refused.
    LinkSeal sealed(kLinkCipher, key_of(3), Side::use);
    CHECK_THROWS_WITH(open(serve.rx, seal(sealed.tx, text("tagged"))), Catch::Contains("does not match its header"));
    Bytes e(kRecordOverhead);
    REQUIRE(use.tx.seal_eof(e.data(), true) == kRecordHeader);
    e.resize(kRecordHeader);
    CHECK(e == Bytes{0x03, 0, 0, 0});
    auto h = serve.rx.parse(e);
    CHECK((h.eof && h.keep && h.size() == kRecordHeader));
    CHECK(open(serve.rx, e).empty());
    CHECK(serve.rx.ended());
    CHECK_THROWS_WITH(open(serve.rx, seal(use.tx, text("late"))), Catch::Contains("after EOF"));
    CHECK_THROWS_WITH(RecordOpener::head(Bytes{0x09, 0, 0, 1}, 0), Catch::Contains("unknown record type"));
}

TEST_CASE("sealing and opening in place (the pump's layout) give the same records and plaintext") {
    for (std::size_t n : {std::size_t(1), std::size_t(300), kRecordMax}) {
        LinkSeal a(kLinkCipher, key_of(9), Side::use), b(kLinkCipher, key_of(9), Side::serve);
        LinkSeal a2(kLinkCipher, key_of(9), Side::use);
        Bytes p(n);
        for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(i * 7 + 3);
        // Plaintext at out + kRecordHeader, sealed where it lies.
        Bytes buf(n + kRecordOverhead);
        std::copy(p.begin(), p.end(), buf.begin() + kRecordHeader);
        CHECK(a.tx.seal(std::span(buf.data() + kRecordHeader, n), buf.data()) == n + kRecordOverhead);
        CHECK(buf == seal(a2.tx, p));  // the same bytes as sealing from a separate buffer
        // Opened where it lies: the plaintext replaces the ciphertext after the header.
        CHECK(b.rx.open(buf, buf.data() + kRecordHeader) == n);
        CHECK(Bytes(buf.begin() + kRecordHeader, buf.begin() + kRecordHeader + n) == p);
    }
}

TEST_CASE("the marker never appears in a sealed record") {
    LinkSeal use(kLinkCipher, key_of(1), Side::use);
    auto marker = text("TN-MARKER-0123456789");
    auto r = seal(use.tx, marker);
    CHECK(std::search(r.begin(), r.end(), marker.begin(), marker.end()) == r.end());
}

TEST_CASE("every tampered byte of a record is refused") {
    LinkSeal use(kLinkCipher, key_of(3), Side::use);
    auto r = seal(use.tx, text("hello, sealed world"));
    for (std::size_t i = 0; i < r.size(); ++i) {
        LinkSeal serve(kLinkCipher, key_of(3), Side::serve);
        auto bad = r;
        bad[i] ^= 0x40;
        // A flipped header byte may also change the announced size: either way it never opens.
        CHECK_THROWS_AS(open(serve.rx, bad), WireError);
    }
    LinkSeal serve(kLinkCipher, key_of(3), Side::serve);
    CHECK(open(serve.rx, r) == text("hello, sealed world"));
}

TEST_CASE("reordered, replayed, foreign-link and wrong-direction records are refused") {
    LinkSeal use(kLinkCipher, key_of(4), Side::use);
    auto r0 = seal(use.tx, text("zero"));
    auto r1 = seal(use.tx, text("one"));
    {
        LinkSeal serve(kLinkCipher, key_of(4), Side::serve);
        CHECK_THROWS_AS(open(serve.rx, r1), WireError);  // reorder: record 1 where 0 is due
    }
    {
        LinkSeal serve(kLinkCipher, key_of(4), Side::serve);
        CHECK(open(serve.rx, r0) == text("zero"));
        CHECK_THROWS_AS(open(serve.rx, r0), WireError);  // replay within the link
    }
    {
        LinkSeal other(kLinkCipher, key_of(5), Side::serve);  // another link's key
        CHECK_THROWS_AS(open(other.rx, r0), WireError);
    }
    {
        LinkSeal same_side(kLinkCipher, key_of(4), Side::use);  // reflected back to the sender
        CHECK_THROWS_AS(open(same_side.rx, r0), WireError);
    }
    {
        LinkSeal other_cipher(Cipher::aes256_gcm, key_of(4), Side::serve);
        CHECK_THROWS_AS(open(other_cipher.rx, r0), WireError);
    }
}

TEST_CASE("headers: the cap is checked before any body is read") {
    CHECK(RecordOpener::head(Bytes{1, 0x01, 0x00, 0x00}).plain == kRecordMax);
    CHECK_THROWS_WITH(RecordOpener::head(Bytes{1, 0x01, 0x00, 0x01}), Catch::Contains("oversized record"));
    CHECK_THROWS_WITH(RecordOpener::head(Bytes{1, 0xff, 0xff, 0xff}), Catch::Contains("oversized record"));
    CHECK_THROWS_WITH(RecordOpener::head(Bytes{1, 0, 0, 0}), Catch::Contains("empty data record"));
    CHECK_THROWS_WITH(RecordOpener::head(Bytes{2, 0, 0, 1}), Catch::Contains("EOF record with a length"));
    CHECK_THROWS_WITH(RecordOpener::head(Bytes{3, 0, 0, 1}), Catch::Contains("EOF record with a length"));
    CHECK_THROWS_WITH(RecordOpener::head(Bytes{4, 0, 0, 1}), Catch::Contains("unknown record type"));
    CHECK_THROWS_AS(RecordOpener::head(Bytes{1, 0, 0}), WireError);
    CHECK((RecordOpener::head(Bytes{2, 0, 0, 0}).eof && !RecordOpener::head(Bytes{2, 0, 0, 0}).keep));
    CHECK((RecordOpener::head(Bytes{3, 0, 0, 0}).eof && RecordOpener::head(Bytes{3, 0, 0, 0}).keep));
}

TEST_CASE("the keep flag of an EOF record is authenticated: flipping it breaks the tag") {
    LinkSeal use(kLinkCipher, key_of(9), Side::use);
    LinkSeal serve(kLinkCipher, key_of(9), Side::serve);
    Bytes rec(kRecordOverhead);
    CHECK(use.tx.seal_eof(rec.data(), true) == kRecordOverhead);
    CHECK(rec[0] == 3);
    auto flipped = rec;
    flipped[0] = 2;
    Bytes out(16);
    {
        LinkSeal peer(kLinkCipher, key_of(9), Side::serve);
        CHECK_THROWS_AS(peer.rx.open(flipped, out.data()), WireError);
    }
    CHECK(serve.rx.open(rec, out.data()) == 0);
    CHECK(serve.rx.ended());
}

TEST_CASE("a truncated record or a stripped EOF never opens") {
    LinkSeal use(kLinkCipher, key_of(6), Side::use);
    auto r = seal(use.tx, text("cut short"));
    LinkSeal serve(kLinkCipher, key_of(6), Side::serve);
    Bytes cut(r.begin(), r.end() - 1);
    CHECK_THROWS_WITH(open(serve.rx, cut), Catch::Contains("does not match"));
    // An attacker cannot forge the EOF either: an EOF record sealed under another key fails.
    LinkSeal forger(kLinkCipher, key_of(9), Side::use);
    Bytes e(kRecordOverhead);
    forger.tx.seal_eof(e.data());
    CHECK_THROWS_AS(open(serve.rx, e), WireError);
    CHECK_FALSE(serve.rx.ended());
}

TEST_CASE("both ends step the key every kRekeyRecords records, in step, without a message") {
    CHECK(kRekeyRecords == (std::uint64_t{1} << 24));
    for (auto c : {Cipher::aes128_gcm, Cipher::aes256_gcm}) {
        RecordSealer tx(c, key_of(9), Side::use, 4);
        RecordOpener rx(c, key_of(9), Side::use, 4);
        RecordOpener stale(c, key_of(9), Side::use);  // an end that never steps
        RecordSealer plain_tx(c, key_of(9), Side::use);
        for (int i = 0; i < 10; ++i) {
            auto msg = text("record " + std::to_string(i));
            auto rec = seal(tx, msg);
            Bytes out(msg.size());
            CHECK(rx.open(rec, out.data()) == msg.size());
            CHECK(out == msg);
            auto unstepped = seal(plain_tx, msg);
            if (i < 4) {
                CHECK(rec == unstepped);  // the first key is the one it always was
                CHECK(stale.open(rec, out.data()) == msg.size());
            } else {
                CHECK(rec != unstepped);  // a new key from record 4 on
                if (i == 4) CHECK_THROWS_AS(stale.open(rec, out.data()), WireError);
            }
        }
        Bytes eof(kRecordOverhead);
        eof.resize(tx.seal_eof(eof.data()));
        CHECK(open(rx, eof).empty());
        CHECK(rx.ended());
    }
}

TEST_CASE("a trimmed cipher builds its context again: the same records, across a rekey too") {
    for (auto c : {Cipher::aes128_gcm, Cipher::aes256_gcm}) {
        RecordSealer tx(c, key_of(3), Side::serve, 3), kept_tx(c, key_of(3), Side::serve, 3);
        RecordOpener rx(c, key_of(3), Side::serve, 3);
        CHECK(tx.trimmed());  // nothing built before the first record
        for (int i = 0; i < 8; ++i) {
            auto msg = text("record " + std::to_string(i));
            auto rec = seal(tx, msg);
            CHECK_FALSE(tx.trimmed());
            CHECK(rec == seal(kept_tx, msg));
            CHECK(open(rx, rec) == msg);
            if (i % 2 == 0) tx.trim();  // records 3 and 6 step the key while some are trimmed
            if (i % 3 == 0) rx.trim();
        }
        tx.trim();
        Bytes eof(kRecordOverhead);
        eof.resize(tx.seal_eof(eof.data()));
        CHECK(open(rx, eof).empty());
        CHECK(rx.ended());
    }
}

TEST_CASE("the relay tools' digest helpers: SHA-256, constant-time equality, wiping") {
    auto md = tn::relay::sha256("abc");  // FIPS 180-2 example
    static const std::uint8_t want[] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                        0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                        0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    CHECK(tn::relay::equal_bytes(md, want));
    auto other = tn::relay::sha256("abd");
    CHECK_FALSE(tn::relay::equal_bytes(md, other));
    CHECK_FALSE(tn::relay::equal_bytes(std::span(md).first(31), md));  // lengths differ: unequal
    tn::relay::wipe(md);
    CHECK(md == tn::relay::Digest256{});
}
