// Unit tests of lib/tun: handshake state machine, sessions, routing, roaming, rejections, pool.
#include <catch2/catch.hpp>

#include <algorithm>
#include <new>

#include "tun/persist.hpp"
#include "tun_test_util.hpp"

using namespace tn::tun;
using namespace tn::tun::test;

TEST_CASE("handshake brings both clients up with pool addresses and the pushed config") {
    Net n;
    n.connect(n.c1, n.e1);
    n.connect(n.c2, n.e2);
    REQUIRE(n.c1.connected());
    REQUIRE(n.c2.connected());
    auto p1 = *n.c1.push();
    auto p2 = *n.c2.push();
    CHECK(n.server.pool().contains(p1.address));
    CHECK(p1.address != p2.address);
    CHECK(p1.address != n.server.server_address());
    CHECK(p1.prefix == 24);
    CHECK(p1.mtu == 1400);
    CHECK(p1.routes == std::vector<Route>{parse_cidr("10.88.0.0/16")});
    CHECK(p1.dns == std::vector<std::uint32_t>{parse_ipv4("10.99.0.1")});
    CHECK(n.server.peers()[0]->stats.handshakes == 1);
    CHECK(n.server.peers()[0]->endpoint == n.e1);
    CHECK(n.server.stats().rejected_handshakes == 0);
}

TEST_CASE("addresses are stable per key across reconnects") {
    Net n;
    n.connect(n.c1, n.e1);
    auto first = n.c1.push()->address;
    n.now += rekey_after_time;  // forces a new handshake
    n.wall += rekey_after_time;
    n.connect(n.c1, n.e1);
    CHECK(n.server.peers()[0]->stats.handshakes == 2);
    CHECK(n.c1.push()->address == first);
    // A fresh server (a restart) derives the same first choice from the key.
    Net m;
    m.connect(m.c1, m.e1);
    CHECK(m.c1.push()->address == first);
}

TEST_CASE("data flows client -> server TUN, server TUN -> client, and client -> client") {
    Net n;
    n.connect(n.c1, n.e1);
    n.connect(n.c2, n.e2);
    std::uint32_t a1 = n.c1.push()->address, a2 = n.c2.push()->address, srv = n.server.server_address();

    Buf b;
    auto pkt = ipv4_packet(a1, srv, 100);
    ClientActions ca = n.c1.on_tun(b.data(), b.load_inner(pkt), n.now);
    REQUIRE(ca.send.size() == transport_header_len + 100 + tag_len);
    Buf sb;
    std::size_t len = sb.load(ca.send);
    Actions sa = n.server.on_datagram(sb.data(), len, n.e1, n.now, n.wall, n.scratch.data());
    REQUIRE(sa.to_tun.size() == 100);
    CHECK(std::equal(pkt.begin(), pkt.end(), sa.to_tun.begin()));
    CHECK(n.server.peers()[0]->stats.rx_packets == 1);
    CHECK(n.server.peers()[0]->stats.rx_bytes == 100);

    auto back = ipv4_packet(srv, a1, 80);
    Buf tb;
    sa = n.server.on_tun(tb.data(), tb.load_inner(back), n.now);
    REQUIRE(!sa.send.empty());
    CHECK(sa.send_to == n.e1);
    Buf cb, cs;
    ca = n.c1.on_datagram(cb.data(), cb.load(sa.send), n.now, cs.data());
    REQUIRE(ca.to_tun.size() == 80);

    // Client to client goes through the server without touching its TUN.
    auto c2c = ipv4_packet(a1, a2, 64);
    ca = n.c1.on_tun(b.data(), b.load_inner(c2c), n.now);
    len = sb.load(ca.send);
    sa = n.server.on_datagram(sb.data(), len, n.e1, n.now, n.wall, n.scratch.data());
    CHECK(sa.to_tun.empty());
    REQUIRE(!sa.send.empty());
    CHECK(sa.send_to == n.e2);
    ca = n.c2.on_datagram(cb.data(), cb.load(sa.send), n.now, cs.data());
    REQUIRE(ca.to_tun.size() == 64);
    CHECK(std::equal(c2c.begin(), c2c.end(), ca.to_tun.begin()));
}

TEST_CASE("a peer cannot send from another peer's address") {
    Net n;
    n.connect(n.c1, n.e1);
    Buf b, sb;
    auto pkt = ipv4_packet(parse_ipv4("10.99.0.77"), n.server.server_address());
    ClientActions ca = n.c1.on_tun(b.data(), b.load_inner(pkt), n.now);
    Actions sa = n.server.on_datagram(sb.data(), sb.load(ca.send), n.e1, n.now, n.wall, n.scratch.data());
    CHECK(sa.to_tun.empty());
    CHECK(n.server.stats().dropped_spoofed == 1);
}

TEST_CASE("an unknown key is rejected, counted and costs no peer state") {
    Net n;
    ClientCore stranger(ClientSettings{fixed_keypair(0x61), n.server_key.pub, seconds(0)});
    Buf s, b;
    auto ca = stranger.tick(n.now, n.wall, s.data());
    Actions a = n.server.on_datagram(b.data(), b.load(ca.send), n.e1, n.now, n.wall, n.scratch.data());
    CHECK(a.send.empty());
    REQUIRE(a.rejected != nullptr);
    CHECK(std::string(a.rejected->reason) == "unknown_key");
    CHECK(n.server.stats().rejected_handshakes == 1);
    CHECK(n.server.pool().used() == 0);
    auto r = n.server.recent_rejections();
    REQUIRE(r.size() == 1);
    CHECK(r[0].source == n.e1);
}

TEST_CASE("a replayed initiation is refused by its timestamp; a wrong server key fails mac1") {
    Net n;
    Buf s, b;
    auto ca = n.c1.tick(n.now, n.wall, s.data());
    std::vector<std::uint8_t> init(ca.send.begin(), ca.send.end());
    Actions a = n.server.on_datagram(b.data(), b.load(Bytes(init)), n.e1, n.now, n.wall, n.scratch.data());
    CHECK(!a.send.empty());
    a = n.server.on_datagram(b.data(), b.load(Bytes(init)), n.e2, n.now, n.wall, n.scratch.data());
    CHECK(a.send.empty());
    REQUIRE(a.rejected);
    CHECK(std::string(a.rejected->reason) == "replayed_timestamp");

    ClientCore wrong(ClientSettings{n.k1, fixed_keypair(0x70).pub, seconds(0)});
    ca = wrong.tick(n.now, n.wall + seconds(1), s.data());
    a = n.server.on_datagram(b.data(), b.load(ca.send), n.e1, n.now, n.wall, n.scratch.data());
    REQUIRE(a.rejected);
    CHECK(std::string(a.rejected->reason) == "bad_mac1");
}

TEST_CASE("a handshake flood gets cookie replies instead of DH work once half the burst is spent") {
    Net n;
    Buf s, b;
    int cookies = 0, answered = 0;
    for (int i = 0; i < 80; ++i) {
        ClientCore c(ClientSettings{n.k1, n.server_key.pub, seconds(0)});
        auto ca = c.tick(n.now, n.wall + std::chrono::milliseconds(i), s.data());
        Actions a = n.server.on_datagram(b.data(), b.load(ca.send), n.e1, n.now, n.wall, n.scratch.data());
        if (a.rejected && std::string(a.rejected->reason) == "cookie_sent") {
            ++cookies;
            CHECK(a.send.size() == cookie_len);
            CHECK(a.send[0] == static_cast<std::uint8_t>(MsgType::cookie));
        } else if (a.send.size() == response_len) {
            ++answered;
        }
    }
    CHECK(answered == 26);  // 50 - 26 = 24 tokens left: under load from there on
    CHECK(cookies == 54);
    CHECK(n.server.recent_rejections().size() == ServerCore::rejection_ring);
    // Tokens come back with time and the load ends.
    n.now += seconds(1);
    n.wall += seconds(1);
    n.connect(n.c1, n.e1);
    CHECK(n.c1.connected());
}

TEST_CASE("a replayed data packet is dropped and does not move the endpoint") {
    Net n;
    n.connect(n.c1, n.e1);
    Buf b, sb;
    auto pkt = ipv4_packet(n.c1.push()->address, n.server.server_address());
    ClientActions ca = n.c1.on_tun(b.data(), b.load_inner(pkt), n.now);
    std::vector<std::uint8_t> captured(ca.send.begin(), ca.send.end());
    Actions a = n.server.on_datagram(sb.data(), sb.load(Bytes(captured)), n.e1, n.now, n.wall, n.scratch.data());
    CHECK(!a.to_tun.empty());
    Endpoint evil = endpoint("198.51.100.9", 999);
    a = n.server.on_datagram(sb.data(), sb.load(Bytes(captured)), evil, n.now, n.wall, n.scratch.data());
    CHECK(a.to_tun.empty());
    CHECK(n.server.stats().dropped_replay == 1);
    CHECK(n.server.peers()[0]->endpoint == n.e1);
    CHECK(n.server.peers()[0]->stats.rx_packets == 1);
}

TEST_CASE("roaming: the endpoint follows the last authenticated packet") {
    Net n;
    n.connect(n.c1, n.e1);
    Endpoint moved = endpoint("203.0.113.5", 51000);
    Buf b, sb;
    auto pkt = ipv4_packet(n.c1.push()->address, n.server.server_address());
    ClientActions ca = n.c1.on_tun(b.data(), b.load_inner(pkt), n.now);
    n.server.on_datagram(sb.data(), sb.load(ca.send), moved, n.now, n.wall, n.scratch.data());
    CHECK(n.server.peers()[0]->endpoint == moved);
    Buf tb;
    Actions a = n.server.on_tun(tb.data(), tb.load_inner(ipv4_packet(n.server.server_address(), n.c1.push()->address)),
                                n.now);
    CHECK(a.send_to == moved);
}

TEST_CASE("a forged packet with a known index is dropped") {
    Net n;
    n.connect(n.c1, n.e1);
    Buf b, sb;
    ClientActions ca = n.c1.on_tun(b.data(), b.load_inner(ipv4_packet(n.c1.push()->address, 1)), n.now);
    std::vector<std::uint8_t> d(ca.send.begin(), ca.send.end());
    d[transport_header_len + 3] ^= 1;
    Actions a = n.server.on_datagram(sb.data(), sb.load(Bytes(d)), endpoint("198.51.100.1", 1), n.now, n.wall,
                                     n.scratch.data());
    CHECK(a.to_tun.empty());
    CHECK(n.server.stats().dropped_auth == 1);
    CHECK(n.server.peers()[0]->endpoint == n.e1);
}

TEST_CASE("handshake timestamps survive a restart: an initiation captured before it is refused after") {
    Net n;
    Buf s;
    auto ca = n.c1.tick(n.now, n.wall, s.data());
    std::vector<std::uint8_t> captured(ca.send.begin(), ca.send.end());
    n.client_to_server(n.c1, n.e1, Bytes(captured));
    REQUIRE(n.c1.connected());
    // What the runner writes to its state file and reads back at the next start.
    auto text = format_timestamps(n.server.timestamps());
    auto back = parse_timestamps(text + "junk line\nAAAA 00\n");
    REQUIRE(back == n.server.timestamps());
    REQUIRE(back.size() == 1);
    ServerCore restarted(Net::settings(n.server_key, n.k1, n.k2));
    restarted.restore_timestamps(back);
    Buf b;
    Actions a = restarted.on_datagram(b.data(), b.load(Bytes(captured)), n.e1, n.now, n.wall, n.scratch.data());
    REQUIRE(a.rejected);
    CHECK(std::string(a.rejected->reason) == "replayed_timestamp");
    // Without the record the same datagram would have been answered: the record is what refuses it.
    ServerCore forgetful(Net::settings(n.server_key, n.k1, n.k2));
    a = forgetful.on_datagram(b.data(), b.load(Bytes(captured)), n.e1, n.now, n.wall, n.scratch.data());
    CHECK(a.send.size() == response_len);
    // An older record never lowers what a running server has seen.
    auto newer = n.server.timestamps();
    auto older = newer;
    older[0].second = Timestamp{};
    older[0].second[11] = 1;
    n.server.restore_timestamps(older);
    CHECK(n.server.timestamps() == newer);
}

TEST_CASE("the timestamp log appends one line per handshake and compacts before it doubles") {
    auto key = [](std::uint8_t b) {
        Key k{};
        k[0] = b;
        return k;
    };
    auto ts = [](std::uint8_t s) {
        Timestamp t{};
        t[7] = s;
        return t;
    };
    TimestampLog log;
    for (std::uint8_t i = 0; i < 10; ++i) log.accept(key(i), ts(1));
    // A handshake costs one line whatever the record's size, and the line holds the greatest timestamp.
    auto line = log.accept(key(3), ts(5));
    CHECK(line == format_timestamps({{key(3), ts(5)}}));
    CHECK(log.accept(key(3), ts(2)) == line);  // an older one (a restored record was newer) never lowers it
    // Loading the log (older lines, duplicates, a line torn by a crash) keeps each key's greatest.
    std::string file = log.whole() + format_timestamps({{key(3), ts(2)}}) + line + line.substr(0, 30);
    TimestampLog back(file);
    CHECK(back.record() == log.record());
    CHECK(back.record().at(key(3)) == ts(5));
    CHECK(back.record().size() == 10);
    // Compaction: not before kMinAppends appended lines, nor before they outnumber the keys.
    CHECK(!log.compaction_due());
    std::size_t appended = 12;
    while (!log.compaction_due()) {
        log.accept(key(1), ts(static_cast<std::uint8_t>(appended)));
        ++appended;
    }
    CHECK(appended == TimestampLog::kMinAppends + 1);
    log.compacted();
    CHECK(!log.compaction_due());
    CHECK(TimestampLog(log.whole()).record() == log.record());
    for (std::uint16_t i = 0; i < 200; ++i) log.accept(key(static_cast<std::uint8_t>(i)), ts(9));
    CHECK(log.record().size() == 200);
    log.compacted();
    std::size_t n = 0;
    while (!log.compaction_due()) {
        log.accept(key(0), ts(10));
        ++n;
    }
    CHECK(n == 201);  // a bigger record may trail more lines: the file stays under twice its size
}

TEST_CASE("private and ephemeral keys are wiped when their holder goes") {
    // The objects live in a buffer we own, so its bytes may be read after their destructors ran.
    alignas(KeyPair) unsigned char kp_buf[sizeof(KeyPair)];
    auto* kp = new (kp_buf) KeyPair(generate_keypair());
    REQUIRE(kp->priv != Key{});
    kp->~KeyPair();
    CHECK(std::all_of(kp_buf, kp_buf + sizeof(Key), [](unsigned char b) { return b == 0; }));
    // The initiator's state holds the ephemeral key and chaining key until the response arrives.
    KeyPair si = fixed_keypair(0x01), sr = fixed_keypair(0x40);
    std::uint8_t init[initiation_len];
    alignas(InitiatorState) unsigned char st_buf[sizeof(InitiatorState)];
    auto made = create_initiation(si, sr.pub, generate_keypair(), Timestamp{}, 1, init);
    REQUIRE(made);
    auto* st = new (st_buf) InitiatorState(*made);
    REQUIRE(st->eph.priv != Key{});
    REQUIRE(st->ck != Key{});
    auto eph_off = reinterpret_cast<unsigned char*>(&st->eph.priv) - st_buf;
    auto ck_off = reinterpret_cast<unsigned char*>(&st->ck) - st_buf;
    st->~InitiatorState();
    CHECK(std::all_of(st_buf + eph_off, st_buf + eph_off + key_len, [](unsigned char b) { return b == 0; }));
    CHECK(std::all_of(st_buf + ck_off, st_buf + ck_off + key_len, [](unsigned char b) { return b == 0; }));
}

TEST_CASE("a handshake key on the stack is wiped on every way out, early returns included") {
    Key k;
    k.fill(0xaa);
    auto leave_early = [&](bool fail) {
        WipeOnExit w(k);
        if (fail) return false;  // the failed-check path that used to skip the wipe
        return true;
    };
    CHECK_FALSE(leave_early(true));
    CHECK(k == Key{});
    k.fill(0x55);
    CHECK(leave_early(false));
    CHECK(k == Key{});
}

TEST_CASE("a pre-shared key: the peer holding it connects, one without it does not, a new one ends the session") {
    Key psk = fill_key(0x60);
    auto s = Net::settings(fixed_keypair(0x40), fixed_keypair(0x01), fixed_keypair(0x21));
    s.peers[0].psk = psk;
    s.peers[1].psk = psk;
    Net n(s);
    n.c1 = ClientCore(ClientSettings{n.k1, n.server_key.pub, seconds(1), psk});
    n.connect(n.c1, n.e1);
    CHECK(n.c1.connected());
    n.connect(n.c2, n.e2);  // c2 was given no key: the server's response does not authenticate
    CHECK_FALSE(n.c2.connected());
    CHECK(n.c2.stats().dropped >= 1);
    auto find = [&](const char* name) {
        for (auto& p : n.server.peers())
            if (p->config.name == name) return p.get();
        return static_cast<Peer*>(nullptr);
    };
    REQUIRE(find("one")->current);
    CHECK_FALSE(find("two")->current);
    auto ts_before = n.server.timestamps();
    auto s2 = s;
    s2.peers[0].psk = fill_key(0x61);  // replaced, say because it leaked
    auto r = n.server.reload(s2);
    CHECK(r.rekeyed == 1);
    CHECK(r.kept == 1);
    CHECK_FALSE(find("one")->current);  // the live session went with the old key
    auto ts_after = n.server.timestamps();
    std::sort(ts_before.begin(), ts_before.end());
    std::sort(ts_after.begin(), ts_after.end());
    CHECK(ts_after == ts_before);  // and an initiation captured before stays refused
}

TEST_CASE("deadlines: tick(now) acts, next_deadline() says when next, as in the other cores") {
    Net n;
    // Nothing to expire on a server without sessions; a client without one is due at once.
    CHECK_FALSE(n.server.next_deadline());
    REQUIRE(n.c1.next_deadline());
    CHECK(*n.c1.next_deadline() <= n.now);
    n.connect(n.c1, n.e1);
    TimePoint made = n.now;
    // The server's next deadline is when the new keypair must go; the client's is its keepalive.
    CHECK(n.server.next_deadline() == made + reject_after_time);
    CHECK(n.c1.next_deadline() == made + seconds(1));
    n.server.tick(made + reject_after_time - seconds(1));
    REQUIRE(n.server.peers()[0]->current);
    n.server.tick(made + reject_after_time);
    CHECK_FALSE(n.server.peers()[0]->current);
    CHECK_FALSE(n.server.next_deadline());
}

TEST_CASE("deadlines with many peers: the earliest expiry wakes tick(), which keeps the later sessions") {
    Net n;
    n.connect(n.c1, n.e1);
    TimePoint first = n.now;
    n.now += seconds(10);
    n.connect(n.c2, n.e2);
    // A later keypair does not hide an earlier one's expiry (tick() only scans once one is due).
    CHECK(n.server.next_deadline() == first + reject_after_time);
    n.server.tick(first + reject_after_time - seconds(1));
    CHECK(n.server.next_deadline() == first + reject_after_time);
    n.server.tick(first + reject_after_time);
    CHECK_FALSE(n.server.peers()[0]->current);
    REQUIRE(n.server.peers()[1]->current);
    CHECK(n.server.next_deadline() == first + seconds(10) + reject_after_time);
}

TEST_CASE("a pre-shared key is wiped when the config holding it goes") {
    // As for KeyPair above: the objects live in a buffer we own, read after their destructors ran.
    alignas(PeerConfig) unsigned char pc_buf[sizeof(PeerConfig)];
    auto* pc = new (pc_buf) PeerConfig(peer_config("one", fill_key(0x01)));
    pc->psk = fill_key(0x60);
    auto psk_off = reinterpret_cast<unsigned char*>(&pc->psk) - pc_buf;
    REQUIRE(pc->psk.key != Key{});
    pc->~PeerConfig();
    CHECK(std::all_of(pc_buf + psk_off, pc_buf + psk_off + key_len, [](unsigned char b) { return b == 0; }));
    alignas(ClientSettings) unsigned char cs_buf[sizeof(ClientSettings)];
    auto* cs = new (cs_buf) ClientSettings{fixed_keypair(0x01), fill_key(0x40), seconds(0), fill_key(0x61)};
    psk_off = reinterpret_cast<unsigned char*>(&cs->psk) - cs_buf;
    cs->~ClientSettings();
    CHECK(std::all_of(cs_buf + psk_off, cs_buf + psk_off + key_len, [](unsigned char b) { return b == 0; }));
}
