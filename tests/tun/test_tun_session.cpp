// Unit tests of lib/tun's building blocks: replay window edges, counter limits and rekey timers,
// malformed and truncated datagrams, the pushed-config codec, keys in base64, and the address pool.
#include <catch2/catch.hpp>

#include <sodium.h>

#include <set>

#include "base/error.hpp"

#include "tun_test_util.hpp"

using namespace tn::tun;
using namespace tn::tun::test;

TEST_CASE("replay window: fresh, duplicate, out of order, and the window's edges") {
    ReplayWindow w;
    CHECK(w.update(0));
    CHECK_FALSE(w.update(0));
    CHECK(w.update(2));
    CHECK(w.update(1));  // late but inside the window
    CHECK_FALSE(w.update(1));
    CHECK(w.update(10000));
    CHECK(w.highest() == 10000);
    // The oldest counter still tracked is highest - (window - 1).
    CHECK(w.check(10000 - ReplayWindow::window + 1));
    CHECK_FALSE(w.check(10000 - ReplayWindow::window));
    CHECK(w.update(10000 - ReplayWindow::window + 1));
    CHECK_FALSE(w.update(10000 - ReplayWindow::window + 1));
    CHECK_FALSE(w.update(2));
    // Sliding across word boundaries clears the bits that now mean new counters.
    for (std::uint64_t c = 10001; c < 10001 + 5 * 64; c += 7) CHECK(w.update(c));
    CHECK(w.update(10001 + 5 * 64 + 1));
    // A jump far ahead resets everything behind.
    CHECK(w.update(1'000'000));
    CHECK_FALSE(w.check(10001));
    CHECK(w.check(999'999));
    // Counters at the refusal limit are never accepted.
    CHECK_FALSE(w.check(reject_after_messages));
    CHECK_FALSE(w.check(~std::uint64_t(0)));
    CHECK(w.update(reject_after_messages - 1));
}

static Keypair pair_for_test(Keypair& other, TimePoint now) {
    Keypair a;
    randombytes_buf(a.send.data(), key_len);
    randombytes_buf(a.recv.data(), key_len);
    a.local_index = 7;
    a.remote_index = 9;
    a.created = now;
    other = Keypair();
    other.send = a.recv;
    other.recv = a.send;
    other.local_index = 9;
    other.remote_index = 7;
    other.created = now;
    return a;
}

TEST_CASE("counters stop short of wrapping; keypairs age out") {
    TimePoint t0 = TimePoint() + std::chrono::hours(1);
    Keypair b;
    Keypair a = pair_for_test(b, t0);
    Buf buf;
    a.send_counter = reject_after_messages - 1;
    std::size_t n = seal(a, MsgType::data, buf.data(), 0, t0);
    REQUIRE(n == transport_header_len + tag_len);
    CHECK(get_u64(buf.data() + 8) == reject_after_messages - 1);
    auto r = open(b, buf.data(), n, reject_after_messages - 1, t0);
    CHECK(r.len == std::size_t(0));
    CHECK(seal(a, MsgType::data, buf.data(), 0, t0) == 0);  // spent: the nonce never repeats
    CHECK(a.wants_rekey(t0));

    Keypair d;
    Keypair c = pair_for_test(d, t0);
    CHECK_FALSE(c.wants_rekey(t0 + rekey_after_time - seconds(1)));
    CHECK(c.wants_rekey(t0 + rekey_after_time));
    c.send_counter = rekey_after_messages;
    CHECK(c.wants_rekey(t0));
    CHECK(seal(c, MsgType::data, buf.data(), 0, t0 + reject_after_time) == 0);
    n = seal(c, MsgType::data, buf.data(), 0, t0);
    CHECK(open(d, buf.data(), n, rekey_after_messages, t0 + reject_after_time).error == OpenError::expired);
}

TEST_CASE("the client rekeys after two minutes and keeps the old keypair for packets in flight") {
    Net n;
    n.connect(n.c1, n.e1);
    std::uint32_t old_index = n.c1.current()->local_index;
    Buf tb;
    auto pkt = ipv4_packet(n.server.server_address(), n.c1.push()->address);
    Actions late = n.server.on_tun(tb.data(), tb.load_inner(pkt), n.now);  // sent on the old keypair
    std::vector<std::uint8_t> in_flight(late.send.begin(), late.send.end());

    n.now += rekey_after_time - seconds(1);
    n.wall += rekey_after_time;
    Buf s;
    ClientActions ca = n.c1.tick(n.now, n.wall, s.data());
    CHECK(ca.send.size() != initiation_len);  // a keepalive, not yet a handshake
    n.now += seconds(1);
    ca = n.c1.tick(n.now, n.wall, s.data());
    REQUIRE(ca.send.size() == initiation_len);
    n.client_to_server(n.c1, n.e1, ca.send);
    CHECK(n.c1.current()->local_index != old_index);
    CHECK(n.server.peers()[0]->stats.handshakes == 2);
    Buf cb, cs;
    ca = n.c1.on_datagram(cb.data(), cb.load(Bytes(in_flight)), n.now, cs.data());
    CHECK(ca.to_tun.size() == pkt.size());
}

TEST_CASE("the client re-handshakes when the server stops answering") {
    Net n;
    n.connect(n.c1, n.e1);
    Buf s;
    int handshakes = 0;
    for (int i = 0; i < 10; ++i) {
        n.now += seconds(1);
        n.wall += seconds(1);
        auto ca = n.c1.tick(n.now, n.wall, s.data());
        if (ca.send.size() == initiation_len) ++handshakes;  // nothing is delivered: the server is gone
    }
    CHECK(handshakes >= 1);
    // The retry in flight is what the client waits for next.
    CHECK(n.c1.next_deadline() <= n.now + rekey_timeout);
}

TEST_CASE("malformed and truncated datagrams are dropped without a crash") {
    Net n;
    Buf s, b;
    ClientCore probe(ClientSettings{n.k1, n.server_key.pub, seconds(0)});
    auto ca = probe.tick(n.now, n.wall, s.data());
    std::vector<std::uint8_t> init(ca.send.begin(), ca.send.end());
    for (std::size_t len = 0; len < init.size(); ++len) {
        Actions a = n.server.on_datagram(b.data(), b.load(Bytes(init.data(), len)), n.e1, n.now, n.wall,
                                         n.scratch.data());
        CHECK(a.send.empty());
    }
    CHECK(n.server.stats().dropped_malformed == init.size());
    auto bad = init;
    bad[2] = 1;  // reserved byte
    CHECK(n.server.on_datagram(b.data(), b.load(Bytes(bad)), n.e1, n.now, n.wall, n.scratch.data()).send.empty());
    std::vector<std::uint8_t> huge(max_datagram_len + 1, 0);
    huge[0] = 4;
    CHECK(n.server.on_datagram(b.data(), b.load(Bytes(huge)), n.e1, n.now, n.wall, n.scratch.data()).send.empty());

    n.connect(n.c1, n.e1);
    Buf tb;
    ClientActions d = n.c1.on_tun(tb.data(), tb.load_inner(ipv4_packet(n.c1.push()->address, 1, 200)), n.now);
    std::vector<std::uint8_t> data(d.send.begin(), d.send.end());
    for (std::size_t len = 0; len < data.size(); ++len) {
        Actions a = n.server.on_datagram(b.data(), b.load(Bytes(data.data(), len)), n.e1, n.now, n.wall,
                                         n.scratch.data());
        CHECK(a.to_tun.empty());
    }
    // Random garbage of every type byte.
    for (int i = 0; i < 2000; ++i) {
        std::size_t len = randombytes_uniform(300);
        randombytes_buf(b.data(), len);
        if (len > 0) b.data()[0] = static_cast<std::uint8_t>(i % 7);
        if (len > 3) b.data()[1] = b.data()[2] = b.data()[3] = 0;
        Actions a = n.server.on_datagram(b.data(), len, n.e2, n.now, n.wall, n.scratch.data());
        CHECK(a.to_tun.empty());
        Buf cs;
        ClientActions c = n.c1.on_datagram(b.data(), len, n.now, cs.data());
        CHECK(c.to_tun.empty());
    }
    CHECK(n.server.peers()[0]->endpoint == n.e1);
    // Inner packets that are not IPv4 never leave the client.
    std::vector<std::uint8_t> v6(60, 0);
    v6[0] = 0x60;
    CHECK(n.c1.on_tun(tb.data(), tb.load_inner(v6), n.now).send.empty());
}

TEST_CASE("pushed config round-trips and refuses bad lengths and ranges") {
    PushConfig c{parse_ipv4("10.99.0.7"), 24, 1400, {parse_ipv4("1.1.1.1"), parse_ipv4("9.9.9.9")},
                 {parse_cidr("10.88.0.0/16"), parse_cidr("0.0.0.0/0")}, 0, {}, {}, {}};
    auto b = encode_push(c);
    CHECK(to_hex(Bytes(b)) == "011805780a630007020101010109090909" "020a580000100000000000");
    CHECK(decode_push(Bytes(b)) == c);
    for (std::size_t len = 0; len < b.size(); ++len) CHECK_FALSE(decode_push(Bytes(b.data(), len)));
    auto longer = b;
    longer.push_back(0);
    CHECK_FALSE(decode_push(Bytes(longer)));
    auto v2 = b;
    v2[0] = 2;
    CHECK_FALSE(decode_push(Bytes(v2)));
    auto tiny_mtu = b;
    tiny_mtu[2] = 0, tiny_mtu[3] = 100;
    CHECK_FALSE(decode_push(Bytes(tiny_mtu)));
}

TEST_CASE("keys in base64") {
    auto kp = generate_keypair();
    auto s = key_to_base64(kp.pub);
    CHECK(s.size() == 44);
    CHECK(key_from_base64(s) == kp.pub);
    CHECK(public_key(kp.priv) == kp.pub);
    CHECK_THROWS_AS(key_from_base64("short"), tn::ParseError);
    CHECK_THROWS_AS(key_from_base64(s.substr(0, 43) + "!"), tn::ParseError);
    CHECK_THROWS_AS(key_from_base64(std::string(44, 'A') + "="), tn::ParseError);
}

TEST_CASE("pool: stable, static reservations respected, exhaustion reported") {
    Pool p(parse_cidr("10.99.0.0/29"));  // hosts .1-.6; .1 is the server
    CHECK(p.capacity() == 5);
    CHECK(p.server_address() == parse_ipv4("10.99.0.1"));
    CHECK(p.reserve(fill_key(1), parse_ipv4("10.99.0.3")));
    CHECK_FALSE(p.reserve(fill_key(2), parse_ipv4("10.99.0.3")));  // taken
    CHECK_FALSE(p.reserve(fill_key(2), parse_ipv4("10.99.0.1")));  // the server's
    CHECK_FALSE(p.reserve(fill_key(2), parse_ipv4("10.99.0.7")));  // broadcast
    CHECK_FALSE(p.reserve(fill_key(2), parse_ipv4("10.99.1.2")));  // outside
    CHECK(p.allocate(fill_key(1)) == parse_ipv4("10.99.0.3"));
    std::set<std::uint32_t> got;
    for (std::uint8_t k = 10; k < 14; ++k) {
        auto a = p.allocate(fill_key(k));
        REQUIRE(a);
        CHECK(p.allocate(fill_key(k)) == a);
        got.insert(*a);
    }
    CHECK(got.size() == 4);
    CHECK(got.count(parse_ipv4("10.99.0.3")) == 0);
    CHECK_FALSE(p.allocate(fill_key(20)));
    CHECK(p.allocate(fill_key(10)));  // known keys still get theirs
    CHECK_THROWS_AS(Pool(parse_cidr("10.0.0.0/31")), tn::ParseError);
}

TEST_CASE("server config errors: static address outside the subnet, duplicate keys") {
    auto s = Net::settings(fixed_keypair(0x40), fixed_keypair(1), fixed_keypair(2));
    s.peers[0].address = parse_ipv4("10.98.0.2");
    CHECK_THROWS_AS(ServerCore(s), tn::ParseError);
    s.peers[0].address.reset();
    s.peers[1].public_key = s.peers[0].public_key;
    CHECK_THROWS_AS(ServerCore(s), tn::ParseError);
}

TEST_CASE("pool exhaustion refuses the handshake and counts it") {
    auto s = Net::settings(fixed_keypair(0x40), fixed_keypair(1), fixed_keypair(0x21));
    s.subnet = parse_cidr("10.99.0.0/30");  // room for one client only
    ServerCore server(s);
    Net n;
    ClientCore a(ClientSettings{n.k1, n.server_key.pub, seconds(0)});
    ClientCore b(ClientSettings{n.k2, n.server_key.pub, seconds(0)});
    Buf sc, buf;
    auto ia = a.tick(n.now, n.wall, sc.data());
    CHECK(!server.on_datagram(buf.data(), buf.load(ia.send), n.e1, n.now, n.wall, n.scratch.data()).send.empty());
    auto ib = b.tick(n.now, n.wall, sc.data());
    Actions r = server.on_datagram(buf.data(), buf.load(ib.send), n.e2, n.now, n.wall, n.scratch.data());
    REQUIRE(r.rejected);
    CHECK(std::string(r.rejected->reason) == "pool_exhausted");
}
