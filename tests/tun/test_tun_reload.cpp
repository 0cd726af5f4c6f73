// Unit tests of ServerCore::reload (SIGHUP): unchanged peers keep their sessions, removed and
// re-addressed ones lose them, new ones can connect, a bad list changes nothing.
#include <catch2/catch.hpp>

#include "base/error.hpp"
#include "tun_test_util.hpp"

using namespace tn::tun;
using namespace tn::tun::test;

namespace {
// Sends one packet from client c to the server; true if it reached the server's TUN.
bool reaches_server(Net& n, ClientCore& c, const Endpoint& from) {
    if (!c.push()) return false;
    Buf b, sb;
    auto pkt = ipv4_packet(c.push()->address, n.server.server_address(), 80);
    ClientActions ca = c.on_tun(b.data(), b.load_inner(pkt), n.now);
    if (ca.send.empty()) return false;
    std::size_t len = sb.load(ca.send);
    return !n.server.on_datagram(sb.data(), len, from, n.now, n.wall, n.scratch.data()).to_tun.empty();
}
}  // namespace

TEST_CASE("reload keeps unchanged peers' sessions and drops removed ones") {
    Net n;
    n.connect(n.c1, n.e1);
    n.connect(n.c2, n.e2);
    auto a1 = n.c1.push()->address;
    auto s = Net::settings(n.server_key, n.k1, n.k2);
    s.peers = {peer_config("one-renamed", n.k1.pub, std::nullopt)};
    s.dns = {parse_ipv4("10.99.0.53")};
    auto r = n.server.reload(s);
    CHECK(r.kept == 1);
    CHECK(r.removed == 1);
    CHECK(r.added == 0);
    CHECK(r.need_restart.empty());
    REQUIRE(n.server.peers().size() == 1);
    CHECK(n.server.peers()[0]->config.name == "one-renamed");
    CHECK(n.server.peers()[0]->address == a1);
    CHECK(n.server.peers()[0]->stats.handshakes == 1);  // no new handshake needed
    CHECK(reaches_server(n, n.c1, n.e1));
    CHECK_FALSE(reaches_server(n, n.c2, n.e2));  // its session is gone
    // c2 cannot come back: its key is no longer configured.
    n.now += rekey_after_time;
    n.wall += rekey_after_time;
    n.connect(n.c2, n.e2);
    CHECK(n.server.stats().rejected_handshakes == 1);
    // The next handshake of c1 pushes the new DNS server.
    n.connect(n.c1, n.e1);
    CHECK(n.c1.push()->dns == std::vector<std::uint32_t>{parse_ipv4("10.99.0.53")});
    CHECK(n.c1.push()->address == a1);
}

TEST_CASE("reload adds a peer that can then connect") {
    Net n;
    auto s = Net::settings(n.server_key, n.k1, n.k2);
    s.peers = {peer_config("one", n.k1.pub, std::nullopt)};
    ServerCore one(s);
    s.peers.push_back(peer_config("two", n.k2.pub, parse_ipv4("10.99.0.200")));
    auto r = one.reload(s);
    CHECK(r.added == 1);
    CHECK(r.kept == 1);
    REQUIRE(one.peers().size() == 2);
    CHECK(one.peers()[1]->address == parse_ipv4("10.99.0.200"));
}

TEST_CASE("reload with another static address ends that peer's session; it gets the new address") {
    Net n;
    n.connect(n.c1, n.e1);
    auto s = Net::settings(n.server_key, n.k1, n.k2);
    s.peers[0].address = parse_ipv4("10.99.0.77");
    auto r = n.server.reload(s);
    CHECK(r.readdressed == 1);
    CHECK(r.added == 0);
    n.now += seconds(1);
    CHECK_FALSE(reaches_server(n, n.c1, n.e1));
    n.now += n.c1.dead_after() + seconds(1);  // the client notices and handshakes again
    n.wall += n.c1.dead_after() + seconds(1);
    n.connect(n.c1, n.e1);
    REQUIRE(n.c1.push());
    CHECK(n.c1.push()->address == parse_ipv4("10.99.0.77"));
    CHECK(reaches_server(n, n.c1, n.e1));
}

TEST_CASE("a pooled peer on an address a new static peer claims is moved") {
    Net n;
    n.connect(n.c1, n.e1);
    auto a1 = n.c1.push()->address;
    auto s = Net::settings(n.server_key, n.k1, n.k2);
    s.peers[1].address = a1;  // "two" now wants c1's pooled address
    n.server.reload(s);
    auto& peers = n.server.peers();
    REQUIRE(peers.size() == 2);
    CHECK(peers[0]->address == 0);  // "one" lost it and handshakes again
    CHECK(peers[1]->address == a1);
    CHECK_FALSE(reaches_server(n, n.c1, n.e1));
}

TEST_CASE("an inconsistent reload changes nothing") {
    Net n;
    n.connect(n.c1, n.e1);
    auto s = Net::settings(n.server_key, n.k1, n.k2);
    SECTION("duplicate key") { s.peers.push_back(peer_config("again", n.k1.pub, std::nullopt)); }
    SECTION("address outside the subnet") { s.peers[1].address = parse_ipv4("10.1.0.5"); }
    SECTION("the server's own address") { s.peers[1].address = parse_ipv4("10.99.0.1"); }
    SECTION("two peers, one static address") {
        s.peers[0].address = parse_ipv4("10.99.0.9");
        s.peers[1].address = parse_ipv4("10.99.0.9");
    }
    SECTION("the server's own key") { s.peers.push_back(peer_config("me", n.server_key.pub, std::nullopt)); }
    CHECK_THROWS_AS(n.server.reload(s), tn::ParseError);
    CHECK(n.server.peers().size() == 2);
    CHECK(reaches_server(n, n.c1, n.e1));
}

TEST_CASE("reload reports settings that only apply at a restart") {
    Net n;
    auto s = Net::settings(n.server_key, n.k1, n.k2);
    s.mtu = 1300;
    s.subnet = parse_cidr("10.98.0.0/24");
    auto r = n.server.reload(s);
    CHECK(r.need_restart == std::vector<std::string>{"subnet", "mtu"});
}

TEST_CASE("reload applies a new handshake_rate (the DH ceiling) and a new cipher from the next handshake") {
    auto s = Net::settings(fixed_keypair(0x40), fixed_keypair(0x01), fixed_keypair(0x21));
    s.max_handshakes_per_second = 0.001;  // no refill within the test
    s.max_handshake_burst = 1;
    Net n(s);
    n.connect(n.c1, n.e1);
    REQUIRE(n.c1.connected());
    n.connect(n.c2, n.e2);
    CHECK_FALSE(n.c2.connected());  // the ceiling's one token is spent
    CHECK(std::string(n.server.recent_rejections().back().reason) == "rate_limited");
    s.max_handshakes_per_second = 1000;
    s.max_handshake_burst = 500;
    s.aes = aes_gcm_available();  // libsodium's AES-256-GCM needs AES-NI
    n.server.reload(s);
    n.now += std::chrono::milliseconds(10);  // refills at the new rate
    n.wall += std::chrono::seconds(1);
    ClientSettings cs{n.k2, n.server_key.pub, seconds(0)};
    cs.offer_aes = s.aes;
    ClientCore c2(cs);
    n.connect(c2, n.e2);
    REQUIRE(c2.connected());
    CHECK(c2.current_keypair()->suite == (s.aes ? Suite::aes256_gcm : Suite::chacha20_poly1305));
}
