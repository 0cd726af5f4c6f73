// Site-to-site in the server core: subnets behind a peer are routed to it, pushed to the others,
// accepted as sources from that peer only; overlaps are refused; per-peer push settings.
#include <catch2/catch.hpp>

#include "base/error.hpp"
#include "tun_test_util.hpp"

using namespace tn::tun;
using namespace tn::tun::test;

namespace {

ServerSettings site_settings() {
    auto s = Net::settings(fixed_keypair(0x40), fixed_keypair(0x01), fixed_keypair(0x21));
    s.peers[0].routes = {parse_cidr("10.50.0.0/24")};
    s.peers[1].push_routes = std::vector<Route>{parse_cidr("0.0.0.0/0")};
    s.peers[1].dns = std::vector<std::uint32_t>{parse_ipv4("10.50.0.53")};
    s.peers[1].mtu = 1300;
    return s;
}

// Sends `pkt` from client c (at endpoint e) to the server.
Actions send(Net& n, ClientCore& c, const Endpoint& e, const std::vector<std::uint8_t>& pkt, Buf& sb) {
    Buf b;
    ClientActions ca = c.on_tun(b.data(), b.load_inner(pkt), n.now);
    return n.server.on_datagram(sb.data(), sb.load(ca.send), e, n.now, n.wall, n.scratch.data());
}

}  // namespace

TEST_CASE("a peer's site routes are pushed to the others, with per-peer overrides") {
    Net n(site_settings());
    n.connect(n.c1, n.e1);
    n.connect(n.c2, n.e2);
    auto p1 = *n.c1.push(), p2 = *n.c2.push();
    CHECK(p1.routes == std::vector<Route>{parse_cidr("10.88.0.0/16")});  // not its own subnet back
    CHECK(p1.mtu == 1400);
    CHECK(p2.routes == std::vector<Route>{parse_cidr("0.0.0.0/0"), parse_cidr("10.50.0.0/24")});
    CHECK(p2.dns == std::vector<std::uint32_t>{parse_ipv4("10.50.0.53")});
    CHECK(p2.mtu == 1300);
}

TEST_CASE("traffic for a site goes to its peer, and only that peer may send from it") {
    Net n(site_settings());
    n.connect(n.c1, n.e1);
    n.connect(n.c2, n.e2);
    std::uint32_t a2 = n.c2.push()->address, host = parse_ipv4("10.50.0.7");
    Buf sb;
    // From the server's TUN (its LAN, its NAT) to the site.
    Buf tb;
    Actions sa = n.server.on_tun(tb.data(), tb.load_inner(ipv4_packet(n.server.server_address(), host)), n.now);
    CHECK(sa.send_to == n.e1);
    // From the other client to the site, and the site's answer.
    sa = send(n, n.c2, n.e2, ipv4_packet(a2, host), sb);
    CHECK(sa.send_to == n.e1);
    sa = send(n, n.c1, n.e1, ipv4_packet(host, a2), sb);
    CHECK(sa.send_to == n.e2);
    CHECK(n.server.stats().dropped_spoofed == 0);
    // The other client may not speak for the site.
    sa = send(n, n.c2, n.e2, ipv4_packet(host, n.server.server_address()), sb);
    CHECK(sa.to_tun.empty());
    CHECK(sa.send.empty());
    CHECK(n.server.stats().dropped_spoofed == 1);
}

TEST_CASE("overlapping site routes are refused, at start and at reload") {
    auto s = site_settings();
    SECTION("across peers") { s.peers[1].routes = {parse_cidr("10.50.0.128/25")}; }
    SECTION("with the tunnel subnet") { s.peers[1].routes = {parse_cidr("10.99.0.0/16")}; }
    SECTION("within one peer") { s.peers[0].routes.push_back(parse_cidr("10.0.0.0/8")); }
    CHECK_THROWS_AS(ServerCore(s), tn::ParseError);
    Net n(site_settings());
    CHECK_THROWS_AS(n.server.reload(s), tn::ParseError);
}

TEST_CASE("a reload moves a site to another peer") {
    Net n(site_settings());
    n.connect(n.c1, n.e1);
    n.connect(n.c2, n.e2);
    auto s = site_settings();
    s.peers[0].routes.clear();
    s.peers[1].routes = {parse_cidr("10.50.0.0/24")};
    n.server.reload(s);
    Buf tb;
    Actions sa = n.server.on_tun(tb.data(), tb.load_inner(ipv4_packet(n.server.server_address(), parse_ipv4("10.50.0.7"))), n.now);
    CHECK(sa.send_to == n.e2);
}
