// Wire format of the relay protocol against doc/PROTOCOL.relay.md: golden bytes, round trips, and
// malformed, truncated and oversized input.
#include <catch2/catch.hpp>

#include <algorithm>

#include "relay/auth.hpp"
#include "relay/messages.hpp"

using namespace tn::relay;

TEST_CASE("hello is TNRL + big-endian version + zero flags") {
    auto h = encode_hello();
    CHECK(Bytes(h.begin(), h.end()) == Bytes{'T', 'N', 'R', 'L', 0, 6, 0, 0});
    CHECK(decode_hello(h) == 6);
    CHECK(decode_hello(encode_hello(kOldestVersion)) == 5);  // what a route answers a version-5 vnet
    auto newer = encode_hello(7);
    CHECK(decode_hello(newer) == 7);
    Bytes bad{'S', 'S', 'H', '-', 0, 1, 0, 0};
    CHECK_THROWS_WITH(decode_hello(bad), Catch::Contains("bad hello magic"));
    Bytes flags{'T', 'N', 'R', 'L', 0, 1, 0, 1};
    CHECK_THROWS_AS(decode_hello(flags), WireError);
    CHECK_THROWS_AS(decode_hello(std::span(h.data(), 7)), WireError);
}

TEST_CASE("frame header golden bytes and caps") {
    auto h = encode_header(MsgType::link_open, 18);
    CHECK(Bytes(h.begin(), h.end()) == Bytes{0x00, 0x60, 0, 0, 0, 0, 0, 18});
    auto d = decode_header(h);
    CHECK(d.type == MsgType::link_open);
    CHECK(d.length == 18);
    Bytes over{0, 0x63, 0, 0, 0, 1, 0, 1};  // 65537 bytes: one over the cap
    CHECK_THROWS_WITH(decode_header(over), Catch::Contains("oversized frame"));
    Bytes at_cap{0, 0x63, 0, 0, 0, 1, 0, 0};
    CHECK(decode_header(at_cap).length == kMaxPayload);
    Bytes huge{0, 0x63, 0, 0, 0xff, 0xff, 0xff, 0xff};
    CHECK_THROWS_AS(decode_header(huge), WireError);
    Bytes flags{0, 0x30, 0x80, 0, 0, 0, 0, 8};
    CHECK_THROWS_WITH(decode_header(flags), Catch::Contains("unknown flags"));
}

TEST_CASE("ping frame golden bytes") {
    auto b = encode_frame(to_frame(Ping{0x0102030405060708ULL}));
    CHECK(b == Bytes{0, 0x30, 0, 0, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8});
}

TEST_CASE("HEARTBEAT (version 6): type 0x0032, the interval as a big-endian u32, 20 ms to 60 s") {
    auto b = encode_frame(to_frame(Heartbeat{6000}));
    CHECK(b == Bytes{0, 0x32, 0, 0, 0, 0, 0, 4, 0, 0, 0x17, 0x70});
    CHECK(type_name(MsgType::heartbeat) == "HEARTBEAT");
    for (std::uint32_t ms : {kMinHeartbeatMs, 300u, 10000u, kMaxHeartbeatMs})
        CHECK(from_frame<Heartbeat>(to_frame(Heartbeat{ms})).heartbeat_ms == ms);
    for (std::uint32_t ms : {0u, kMinHeartbeatMs - 1, kMaxHeartbeatMs + 1, 0xffffffffu})
        CHECK_THROWS_WITH(from_frame<Heartbeat>(to_frame(Heartbeat{ms})), Catch::Contains("outside 20..60000 ms"));
    auto f = to_frame(Heartbeat{5000});
    f.payload.pop_back();
    CHECK_THROWS_WITH(from_frame<Heartbeat>(f), Catch::Contains("truncated"));
    f = to_frame(Heartbeat{5000});
    f.payload.push_back(0);
    CHECK_THROWS_WITH(from_frame<Heartbeat>(f), Catch::Contains("trailing"));
    CHECK_THROWS_WITH(from_frame<Heartbeat>(to_frame(Pong{1})), Catch::Contains("expected HEARTBEAT"));
    CHECK(speaks_heartbeat(kVersion));
    CHECK_FALSE(speaks_heartbeat(kOldestVersion));
}

TEST_CASE("decoder splits a stream into frames, byte by byte") {
    Bytes stream;
    for (auto f : {to_frame(Ping{1}), to_frame(ServeDown{700}), to_frame(LinkOk{42})}) {
        auto b = encode_frame(f);
        stream.insert(stream.end(), b.begin(), b.end());
    }
    FrameDecoder d;
    std::vector<Frame> got;
    for (auto byte : stream) {
        d.feed(std::span(&byte, 1));
        Frame f;
        while (d.next(f)) got.push_back(f);
    }
    REQUIRE(got.size() == 3);
    CHECK(from_frame<Ping>(got[0]).token == 1);
    CHECK(from_frame<ServeDown>(got[1]).id == 700);
    CHECK(from_frame<LinkOk>(got[2]).link_id == 42);
    CHECK(d.buffered() == 0);
}

TEST_CASE("decoder refuses an oversized frame before buffering its payload") {
    FrameDecoder d;
    Bytes h{0, 0x63, 0, 0, 0x10, 0, 0, 0};  // 256 MiB announced
    d.feed(h);
    Frame f;
    CHECK_THROWS_WITH(d.next(f), Catch::Contains("oversized"));
}

TEST_CASE("messages round-trip") {
    ServeSpec s;
    s.id = 700;
    s.name = "ssh";
    s.ip = "127.0.0.1";
    s.port = 22;
    s.info = "home-ssh";
    s.remote_port = 6000;
    s.domains = {"www.example.com", "*.example.org"};
    auto got = from_frame<Serve>(to_frame(Serve{9, s}));
    CHECK(got.spec.domains == s.domains);
    CHECK(got.req == 9);
    CHECK(got.spec.id == 700);
    CHECK(got.spec.name == "ssh");
    CHECK(got.spec.port == 22);
    CHECK(got.spec.remote_port == 6000);
    CHECK(got.spec.info == "home-ssh");
    CHECK_FALSE(got.spec.unserve);

    Auth a{"office", "home", 77, random_nonce(), {}};
    a.mac[0] = 9;
    auto a2 = from_frame<Auth>(to_frame(a));
    CHECK(a2.group == "office");
    CHECK(a2.name == "home");
    CHECK(a2.instance == 77);
    CHECK(a2.nonce == a.nonce);
    CHECK(a2.mac == a.mac);

    Vnets v{5, {{1, "a", 2}, {3, "b", 0}}};
    auto v2 = from_frame<Vnets>(to_frame(v));
    REQUIRE(v2.vnets.size() == 2);
    CHECK(v2.vnets[1].name == "b");

    auto e = from_frame<ErrorMsg>(to_frame(ErrorMsg{ErrorCode::version, "update tn-vnet"}));
    CHECK(e.code == ErrorCode::version);
    CHECK(e.message == "update tn-vnet");
}

TEST_CASE("malformed payloads are refused") {
    auto f = to_frame(LinkOk{1});
    f.payload.pop_back();
    CHECK_THROWS_WITH(from_frame<LinkOk>(f), Catch::Contains("truncated"));
    f = to_frame(LinkOk{1});
    f.payload.push_back(0);
    CHECK_THROWS_WITH(from_frame<LinkOk>(f), Catch::Contains("trailing"));
    CHECK_THROWS_WITH(from_frame<Ping>(to_frame(Pong{1})), Catch::Contains("expected PING"));
    // A string whose length runs past its cap.
    Writer w;
    w.str(std::string(64, 'x'), 64);
    auto ok = w.take();
    ok[1] = 65;
    ok.push_back('x');
    Reader r(ok);
    CHECK_THROWS_WITH(r.str(64, "group"), Catch::Contains("group is 65 bytes"));
    // A boolean that is neither 0 nor 1.
    auto sr = to_frame(ServeResult{1, true, 5, ""});
    sr.payload[4] = 2;
    CHECK_THROWS_AS(from_frame<ServeResult>(sr), WireError);
    // More custom domains than the cap.
    ServeSpec many;
    many.port = 1;
    auto sf = to_frame(Serve{1, many});
    sf.payload.back() = static_cast<std::uint8_t>(kMaxDomains + 1);
    CHECK_THROWS_WITH(from_frame<Serve>(sf), Catch::Contains("custom domains"));
    Writer too_long;
    CHECK_THROWS_AS(too_long.str(std::string(65, 'x'), 64), WireError);
}

TEST_CASE("proofs bind both nonces, group, name and the TLS session; the token never appears") {
    auto nr = random_nonce(), nv = random_nonce();
    Binding e{}, e2{};
    e2[31] = 1;
    auto m = vnet_proof("secret", nr, nv, "g", "n", e);
    CHECK(equal(m, vnet_proof("secret", nr, nv, "g", "n", e)));
    CHECK_FALSE(equal(m, vnet_proof("secreT", nr, nv, "g", "n", e)));
    CHECK_FALSE(equal(m, vnet_proof("secret", nv, nr, "g", "n", e)));
    CHECK_FALSE(equal(m, vnet_proof("secret", nr, nv, "gn", "", e)));
    CHECK_FALSE(equal(m, vnet_proof("secret", nr, nv, "g", "n", e2)));  // another TLS session
    CHECK_FALSE(equal(route_proof("secret", nv, nr, e), m));
    CHECK_FALSE(equal(route_proof("secret", nv, nr, e), route_proof("secret", nv, nr, e2)));
    auto frame = encode_frame(to_frame(Auth{"g", "n", 1, nv, m}));
    std::string s(frame.begin(), frame.end());
    CHECK(s.find("secret") == std::string::npos);
}

TEST_CASE("tn-vnet's reconnect backoff: steps of 0.5 s doubling to its cap, each delay 5-100 % of its step") {
    tn::Backoff b(reconnect_backoff());
    auto next = [&] { return static_cast<std::uint32_t>(b.next(b.jitter(random_unit())).count()); };
    auto first = next();
    CHECK(first >= 25);
    CHECK(first <= 500);
    std::uint32_t last = 0;
    for (int i = 0; i < 20; ++i) last = next();
    CHECK(last >= 1500);
    CHECK(last <= 30000);
    b.reset();
    CHECK(next() <= 500);
    // The rule's ends: a draw of 0 is 5 % of the step, of 1 the whole step (a restarted route's vnets
    // spread over the whole step, not ±20 % around it: bench/relay/SCALE.md).
    tn::Backoff c(reconnect_backoff(std::chrono::milliseconds(2000)));
    CHECK(c.next(c.jitter(0.0)).count() == 25);
    CHECK(c.next(c.jitter(1.0)).count() == 1000);
    for (int i = 0; i < 1000; ++i) {
        auto u = random_unit();
        REQUIRE(u >= 0.0);
        REQUIRE(u < 1.0);
    }
}

TEST_CASE("link setup frames carry the vnet id and a proof, never the ticket") {
    Mac mac{};
    for (std::size_t i = 0; i < mac.size(); ++i) mac[i] = static_cast<std::uint8_t>(i + 1);
    auto b = encode_frame(to_frame(LinkPark{0x01020304, mac}));
    REQUIRE(b.size() == kHeaderSize + 4 + mac.size());
    CHECK(Bytes(b.begin(), b.begin() + kHeaderSize + 4) == Bytes{0, 0x65, 0, 0, 0, 0, 0, 36, 1, 2, 3, 4});
    CHECK(std::equal(mac.begin(), mac.end(), b.begin() + kHeaderSize + 4));
    auto sb = from_frame<LinkStandby>(to_frame(LinkStandby{7, mac}));
    CHECK(sb.vnet_id == 7);
    CHECK(sb.mac == mac);
    CHECK(type_name(MsgType::link_standby) == "LINK_STANDBY");
    auto f = to_frame(LinkPark{1, mac});
    f.payload.push_back(0);
    CHECK_THROWS_WITH(from_frame<LinkPark>(f), Catch::Contains("trailing"));
    auto o = from_frame<LinkOpen>(to_frame(LinkOpen{9, 700, mac}));
    CHECK((o.vnet_id == 9 && o.id == 700 && o.mac == mac && o.cipher == 0));
    auto a = from_frame<LinkAccept>(to_frame(LinkAccept{9, 1ULL << 40, mac}));
    CHECK((a.vnet_id == 9 && a.link_id == (1ULL << 40) && a.mac == mac));
}

TEST_CASE("LINK_OK: plain carries no key box, sealed carries exactly 48 bytes") {
    auto plain = encode_frame(to_frame(LinkOk{5}));
    CHECK(plain == Bytes{0, 0x62, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 5, 0});
    LinkOk ok{5, 1, {}};
    ok.key_box[47] = 0xee;
    auto f = to_frame(ok);
    CHECK(f.payload.size() == 8 + 1 + 48);
    auto back = from_frame<LinkOk>(f);
    CHECK((back.cipher == 1 && back.key_box[47] == 0xee));
    f.payload.pop_back();
    CHECK_THROWS_WITH(from_frame<LinkOk>(f), Catch::Contains("truncated"));
}

// Vectors computed independently (Python hmac/hashlib, from PROTOCOL.relay.md §9).
TEST_CASE("proof vectors of protocol version 5") {
    Nonce nr{}, nv{};
    for (std::size_t i = 0; i < 32; ++i) {
        nr[i] = static_cast<std::uint8_t>(i);
        nv[i] = static_cast<std::uint8_t>(32 + i);
    }
    Binding e{};
    e.fill(0xee);
    auto hexs = [](const Mac& m) {
        std::string s;
        char b[3];
        for (auto x : m) {
            std::snprintf(b, sizeof b, "%02x", x);
            s += b;
        }
        return s;
    };
    CHECK(hexs(vnet_proof("secret", nr, nv, "g", "n", e)) == "63b34825d122fcb7fba866ab42b15b5ed25a998fd2b7dcf8c0765d84843ca1ab");
    CHECK(hexs(route_proof("secret", nv, nr, e)) == "85093af664e08e116bb8a675af23d328152cf0b98307f3aff27b93019bf3dab5");
    Ticket t{};
    t[0] = 1;
    Nonce n2{};
    n2[0] = 2;
    CHECK(hexs(link_proof(t, MsgType::link_open, n2, 3, 700, 1)) == "1dfabbdb20fc8c935b50b8661ff2f2e4269ed844829df2e6834909d754d3eab2");
}

TEST_CASE("link proofs bind the ticket, frame type, challenge, vnet, argument and cipher") {
    Ticket t{};
    t[0] = 1;
    Nonce nr{};
    nr[0] = 2;
    auto base = link_proof(t, MsgType::link_open, nr, 3, 700);
    CHECK(equal(base, link_proof(t, MsgType::link_open, nr, 3, 700)));
    Ticket t2 = t;
    t2[15] = 9;
    Nonce nr2 = nr;
    nr2[31] = 9;
    CHECK_FALSE(equal(base, link_proof(t2, MsgType::link_open, nr, 3, 700)));
    CHECK_FALSE(equal(base, link_proof(t, MsgType::link_accept, nr, 3, 700)));
    CHECK_FALSE(equal(base, link_proof(t, MsgType::link_open, nr2, 3, 700)));
    CHECK_FALSE(equal(base, link_proof(t, MsgType::link_open, nr, 4, 700)));
    CHECK_FALSE(equal(base, link_proof(t, MsgType::link_open, nr, 3, 701)));
    CHECK_FALSE(equal(link_proof(t, MsgType::link_open, nr, 3, 700, 1), link_proof(t, MsgType::link_open, nr, 3, 700, 2)));
}

TEST_CASE("LINK_OPEN carries the using vnet's key box only when sealed; LINK_OPENED the link id") {
    Mac mac{};
    LinkOpen sealed{9, 700, mac, 1, {}};
    sealed.key_box[0] = 0xab;
    auto f = to_frame(sealed);
    CHECK(f.payload.size() == 4 + 2 + 32 + 1 + 48);
    auto back = from_frame<LinkOpen>(f);
    CHECK((back.cipher == 1 && back.key_box[0] == 0xab));
    f.payload.pop_back();
    CHECK_THROWS_WITH(from_frame<LinkOpen>(f), Catch::Contains("truncated"));
    auto plain = to_frame(LinkOpen{9, 700, mac});
    CHECK(plain.payload.size() == 4 + 2 + 32 + 1);
    plain.payload.push_back(0);
    CHECK_THROWS_WITH(from_frame<LinkOpen>(plain), Catch::Contains("trailing"));
    CHECK(encode_frame(to_frame(LinkOpened{77})) == Bytes{0, 0x68, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 77});
    CHECK(type_name(MsgType::link_opened) == "LINK_OPENED");
}

TEST_CASE("LINK_REQUEST carries the early flag") {
    auto b = encode_frame(to_frame(LinkRequest{1, 700, true}));
    CHECK(b == Bytes{0, 0x50, 0, 0, 0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0, 1, 0x02, 0xbc, 1});
    CHECK(from_frame<LinkRequest>(to_frame(LinkRequest{1, 700, false})).early == false);
    auto f = to_frame(LinkRequest{1, 700, true});
    f.payload.back() = 2;
    CHECK_THROWS_WITH(from_frame<LinkRequest>(f), Catch::Contains("early flag"));
}
