// IPv6 inside the tunnel (doc/PROTOCOL.tun.md §5 version 2, §6-7): the push, the address twins of
// subnet6, the server's routing and source check for IPv6, and clients that drop IPv6 without it.
#include <catch2/catch.hpp>

#include <algorithm>

#include "base/error.hpp"
#include "tun/route_plan6.hpp"
#include "tun_test_util.hpp"

using namespace tn::tun;
using namespace tn::tun::test;

namespace {

ServerSettings dual_stack() {
    auto s = Net::settings(fixed_keypair(0x40), fixed_keypair(0x01), fixed_keypair(0x21));
    s.subnet6 = parse_cidr6("fd00:99::/64");
    s.dns6 = {parse_ipv6("fd00:99::1")};
    s.routes6 = {parse_cidr6("fd00:88::/48")};
    return s;
}

// Sends `pkt` from client c (at endpoint from) through the server; returns the server's actions.
Actions from_client(Net& n, ClientCore& c, const Endpoint& from, const std::vector<std::uint8_t>& pkt, Buf& sb) {
    Buf b;
    ClientActions ca = c.on_tun(b.data(), b.load_inner(pkt), n.now);
    if (ca.send.empty()) return {};
    return n.server.on_datagram(sb.data(), sb.load(ca.send), from, n.now, n.wall, n.scratch.data());
}

}  // namespace

TEST_CASE("push version 2 carries the IPv6 part; without it the bytes stay version 1") {
    PushConfig c{parse_ipv4("10.99.0.7"), 24, 1400, {parse_ipv4("1.1.1.1")}, {parse_cidr("10.88.0.0/16")}, 0, {}, {}, {}};
    auto v1 = encode_push(c);
    CHECK(v1[0] == 1);
    CHECK(v1.size() == 10 + 4 + 5);
    c.prefix6 = 64;
    c.address6 = parse_ipv6("fd00:99::7");
    c.dns6 = {parse_ipv6("fd00:99::1")};
    c.routes6 = {parse_cidr6("::/0"), parse_cidr6("fd00:88::/48")};
    auto v2 = encode_push(c);
    CHECK(v2[0] == 2);
    CHECK(v2.size() == v1.size() + 19 + 16 + 2 * 17);
    REQUIRE(decode_push(v2));
    CHECK(*decode_push(v2) == c);
    // Every truncation and one byte too many are refused, as are a prefix6 of 0 or over 128.
    for (std::size_t n = 0; n < v2.size(); ++n) CHECK_FALSE(decode_push(std::span(v2.data(), n)));
    auto longer = v2;
    longer.push_back(0);
    CHECK_FALSE(decode_push(longer));
    auto bad = v2;
    bad[v1.size()] = 0;
    CHECK_FALSE(decode_push(bad));
    bad[v1.size()] = 129;
    CHECK_FALSE(decode_push(bad));
    bad = v2;
    bad.back() = 129;  // the last route's prefix
    CHECK_FALSE(decode_push(bad));
}

TEST_CASE("the version 2 push example of PROTOCOL.tun.md §5") {
    PushConfig c{parse_ipv4("10.99.0.7"), 24, 1400, {parse_ipv4("1.1.1.1"), parse_ipv4("9.9.9.9")},
                 {parse_cidr("10.88.0.0/16"), parse_cidr("0.0.0.0/0")}, 64, parse_ipv6("fd00:99::7"),
                 {parse_ipv6("fd00:99::1")}, {parse_cidr6("::/0"), parse_cidr6("fd00:88::/48")}};
    auto b = encode_push(c);
    CHECK(to_hex(Bytes(b)) ==
          "021805780a630007020101010109090909020a580000100000000000"
          "40fd00009900000000000000000000000701fd000099000000000000000000000001"
          "020000000000000000000000000000000000fd00008800000000000000000000000030");
}

TEST_CASE("IPv6 text and prefixes") {
    CHECK(cidr_str(parse_cidr6("fd00:99::17/64")) == "fd00:99::/64");
    CHECK(cidr_str(parse_cidr6("2001:db8:ffff::/35")) == "2001:db8:e000::/35");
    CHECK(covers(parse_cidr6("fd00::/8"), parse_ipv6("fd12::1")));
    CHECK_FALSE(covers(parse_cidr6("fd00::/9"), parse_ipv6("fd80::1")));
    CHECK(covers(parse_cidr6("::/0"), parse_ipv6("2001:db8::1")));
    CHECK(overlap(parse_cidr6("fd00:99::/64"), parse_cidr6("fd00::/16")));
    CHECK_FALSE(overlap(parse_cidr6("fd00:99::/64"), parse_cidr6("fd00:98::/64")));
    CHECK_THROWS_AS(parse_cidr6("fd00::/129"), tn::ParseError);
    CHECK_THROWS_AS(parse_ipv6("10.0.0.1"), tn::ParseError);
}

TEST_CASE("the IPv6 pool: each address has its twin at the same offset in subnet6") {
    auto s4 = parse_cidr("10.99.0.0/24");
    auto s6 = parse_cidr6("fd00:99::/64");
    CHECK(ipv6_str(address6_for(s6, s4, parse_ipv4("10.99.0.1"))) == "fd00:99::1");
    CHECK(ipv6_str(address6_for(s6, s4, parse_ipv4("10.99.0.254"))) == "fd00:99::fe");
    auto s4b = parse_cidr("10.100.0.0/16");
    CHECK(ipv6_str(address6_for(parse_cidr6("fd00:99::ff00/112"), s4b, parse_ipv4("10.100.1.2"))) == "fd00:99::102");
    CHECK_NOTHROW(check_subnet6(parse_cidr6("fd00:99::/112"), s4b));
    CHECK_THROWS_AS(check_subnet6(parse_cidr6("fd00:99::/113"), s4b), tn::ParseError);  // too few addresses
    CHECK_THROWS_AS(check_subnet6(parse_cidr6("fe80::/64"), s4), tn::ParseError);
    CHECK_THROWS_AS(check_subnet6(parse_cidr6("ff02::/64"), s4), tn::ParseError);
    CHECK_THROWS_AS(check_subnet6(parse_cidr6("fd00::/127"), s4), tn::ParseError);
    // The core checks it too.
    auto bad = dual_stack();
    bad.subnet6 = parse_cidr6("fd00::/124");
    CHECK_THROWS_AS(ServerCore(bad), tn::ParseError);
}

TEST_CASE("dual stack: pushed IPv6 settings, IPv6 to the server, back, and client to client") {
    Net n(dual_stack());
    n.connect(n.c1, n.e1);
    n.connect(n.c2, n.e2);
    REQUIRE(n.c1.connected());
    auto p1 = *n.c1.push(), p2 = *n.c2.push();
    REQUIRE(p1.has_v6());
    CHECK(p1.prefix6 == 64);
    CHECK(p1.address6 == address6_for(parse_cidr6("fd00:99::/64"), parse_cidr("10.99.0.0/24"), p1.address));
    CHECK(p1.dns6 == std::vector<Ip6>{parse_ipv6("fd00:99::1")});
    CHECK(p1.routes6 == std::vector<Route6>{parse_cidr6("fd00:88::/48")});
    Ip6 srv = *n.server.server_address6();
    CHECK(ipv6_str(srv) == "fd00:99::1");

    Buf sb;
    auto up = ipv6_packet(p1.address6, srv, 120);
    Actions sa = from_client(n, n.c1, n.e1, up, sb);
    REQUIRE(sa.to_tun.size() == 120);
    CHECK(std::equal(up.begin(), up.end(), sa.to_tun.begin()));

    Buf tb, cb, cs;
    auto down = ipv6_packet(srv, p1.address6, 90);
    sa = n.server.on_tun(tb.data(), tb.load_inner(down), n.now);
    REQUIRE(sa.send_to == n.e1);
    ClientActions ca = n.c1.on_datagram(cb.data(), cb.load(sa.send), n.now, cs.data());
    REQUIRE(ca.to_tun.size() == 90);

    auto c2c = ipv6_packet(p1.address6, p2.address6, 70);
    sa = from_client(n, n.c1, n.e1, c2c, sb);
    CHECK(sa.to_tun.empty());
    REQUIRE(sa.send_to == n.e2);
    ca = n.c2.on_datagram(cb.data(), cb.load(sa.send), n.now, cs.data());
    REQUIRE(ca.to_tun.size() == 70);
    CHECK(std::equal(c2c.begin(), c2c.end(), ca.to_tun.begin()));

    // To an address of subnet6 nobody holds: counted; the kernel's multicast chatter: silently not ours.
    auto nobody = ipv6_packet(srv, parse_ipv6("fd00:99::77"));
    CHECK(n.server.on_tun(tb.data(), tb.load_inner(nobody), n.now).send.empty());
    CHECK(n.server.stats().dropped_no_route == 1);
    auto mld = ipv6_packet(srv, parse_ipv6("ff02::16"));
    CHECK(n.server.on_tun(tb.data(), tb.load_inner(mld), n.now).send.empty());
    CHECK(n.server.stats().dropped_no_route == 1);
}

TEST_CASE("the source check holds for IPv6: another peer's address, the server's or one nobody holds") {
    Net n(dual_stack());
    n.connect(n.c1, n.e1);
    n.connect(n.c2, n.e2);
    Ip6 srv = *n.server.server_address6();
    Buf sb;
    // (A link-local source never leaves the client: see below.)
    for (auto src : {n.c2.push()->address6, srv, parse_ipv6("fd00:99::77"), parse_ipv6("fd00:50::1")}) {
        Actions sa = from_client(n, n.c1, n.e1, ipv6_packet(src, srv), sb);
        CHECK(sa.to_tun.empty());
        CHECK(sa.send.empty());
    }
    CHECK(n.server.stats().dropped_spoofed == 4);
    CHECK(n.server.peers()[0]->stats.rx_packets == 0);
}

TEST_CASE("without subnet6 no IPv6 is carried and the push stays version 1") {
    Net n;
    n.connect(n.c1, n.e1);
    REQUIRE(n.c1.connected());
    CHECK_FALSE(n.c1.push()->has_v6());
    CHECK_FALSE(n.server.server_address6());
    // The client does not even send it ...
    Buf b;
    auto pkt = ipv6_packet(parse_ipv6("fd00:99::2"), parse_ipv6("fd00:99::1"));
    CHECK(n.c1.on_tun(b.data(), b.load_inner(pkt), n.now).send.empty());
    // ... and the server does not take it from the TUN.
    Buf tb;
    CHECK(n.server.on_tun(tb.data(), tb.load_inner(pkt), n.now).send.empty());
    CHECK(n.server.stats().dropped_no_route == 0);
}

TEST_CASE("a peer's push_routes and dns replace both families of the server's") {
    auto s = dual_stack();
    s.peers[0].push_routes = std::vector<Route>{parse_cidr("10.1.0.0/16")};
    s.peers[0].push_routes6 = {parse_cidr6("::/0")};
    s.peers[0].dns = std::vector<std::uint32_t>{};
    s.peers[0].dns6 = {parse_ipv6("fd00:99::53")};
    Net n(s);
    n.connect(n.c1, n.e1);
    n.connect(n.c2, n.e2);
    CHECK(n.c1.push()->routes6 == std::vector<Route6>{parse_cidr6("::/0")});
    CHECK(n.c1.push()->dns6 == std::vector<Ip6>{parse_ipv6("fd00:99::53")});
    CHECK(n.c2.push()->routes6 == std::vector<Route6>{parse_cidr6("fd00:88::/48")});
}

TEST_CASE("a reload changes the pushed IPv6 settings; a changed subnet6 waits for a restart") {
    Net n(dual_stack());
    auto s = dual_stack();
    s.routes6 = {parse_cidr6("fd00:77::/48")};
    s.subnet6 = parse_cidr6("fd00:98::/64");
    auto r = n.server.reload(s);
    CHECK(std::find(r.need_restart.begin(), r.need_restart.end(), "subnet6") != r.need_restart.end());
    n.connect(n.c1, n.e1);
    CHECK(n.c1.push()->routes6 == std::vector<Route6>{parse_cidr6("fd00:77::/48")});
    CHECK(ipv6_str(n.c1.push()->address6).rfind("fd00:99::", 0) == 0);
}

TEST_CASE("IPv6 route plans: ::/0 in halves, a push covering the server's endpoint, subnet6 the host has") {
    auto plan = plan_routes6({parse_cidr6("::/0"), parse_cidr6("fd00:88::/48"), parse_cidr6("fd00:88::/48")});
    CHECK(plan == std::vector<Route6>{parse_cidr6("::/1"), parse_cidr6("8000::/1"), parse_cidr6("fd00:88::/48")});
    CHECK(plan_routes6({}).empty());

    auto server = parse_ipv6("fd77::1");
    CHECK_FALSE(covering_route6({parse_cidr6("fd00:88::/48")}, server));
    CHECK(covering_route6({parse_cidr6("fd00:88::/48"), parse_cidr6("fd77::/64")}, server) == parse_cidr6("fd77::/64"));
    CHECK(covering_route6({parse_cidr6("::/0")}, server) == parse_cidr6("::/0"));

    const char* table = "default via fd77::fe dev eth0 metric 1024 pref medium\n"
                        "fd77::/64 dev eth0 proto kernel metric 256 pref medium\n"
                        "fd00:99::/64 dev tn0 proto kernel metric 256 pref medium\n"
                        "unreachable fd00:55::/48 dev lo metric 1024 pref medium\n"
                        "fe80::/64 dev eth0 proto kernel metric 256 pref medium\n";
    auto s6 = parse_cidr6("fd00:99::/64");
    CHECK_FALSE(overlapping_route6(table, s6, "tn0"));  // our own device's, and the default route
    CHECK(overlapping_route6(table, s6, "tn1") == std::string("fd00:99::/64 dev tn0 proto kernel metric 256 pref medium"));
    CHECK(overlapping_route6(table, parse_cidr6("fd77::8000/120"), "tn0")->rfind("fd77::/64 dev eth0", 0) == 0);
    CHECK(overlapping_route6(table, parse_cidr6("fd00::/16"), "tn0")->rfind("unreachable fd00:55::/48", 0) == 0);
    CHECK(overlapping_route6("fd00:99::5 dev eth1 metric 1024\n", s6, "tn0"));  // a host route
    CHECK_FALSE(overlapping_route6("garbage\n\n", s6, "tn0"));
}

TEST_CASE("IPv6 site routes: reached through their peer, accepted as its sources only, pushed to the others") {
    auto s = dual_stack();
    s.peers[0].routes6 = {parse_cidr6("fd00:50::/64")};
    Net n(s);
    n.connect(n.c1, n.e1);
    n.connect(n.c2, n.e2);
    CHECK(n.c2.push()->routes6 == std::vector<Route6>{parse_cidr6("fd00:88::/48"), parse_cidr6("fd00:50::/64")});
    CHECK(n.c1.push()->routes6 == std::vector<Route6>{parse_cidr6("fd00:88::/48")});  // not back to its own router
    Buf sb, cb, cs, tb;
    auto lan = parse_ipv6("fd00:50::2");
    auto c2c = ipv6_packet(n.c2.push()->address6, lan, 70);
    Actions sa = from_client(n, n.c2, n.e2, c2c, sb);
    REQUIRE(sa.send_to == n.e1);
    ClientActions ca = n.c1.on_datagram(cb.data(), cb.load(sa.send), n.now, cs.data());
    CHECK(ca.to_tun.size() == 70);
    // The answer from the site is c1's to send; the same source from c2 is spoofed.
    sa = from_client(n, n.c1, n.e1, ipv6_packet(lan, n.c2.push()->address6), sb);
    CHECK(sa.send_to == n.e2);
    sa = from_client(n, n.c2, n.e2, ipv6_packet(lan, *n.server.server_address6()), sb);
    CHECK(sa.to_tun.empty());
    CHECK(n.server.stats().dropped_spoofed == 1);
    // From the server's TUN too.
    auto down = ipv6_packet(*n.server.server_address6(), parse_ipv6("fd00:50::99"));
    CHECK(n.server.on_tun(tb.data(), tb.load_inner(down), n.now).send_to == n.e1);

    auto bad = dual_stack();
    bad.peers[0].routes6 = {parse_cidr6("fd00:50::/64")};
    bad.peers[1].routes6 = {parse_cidr6("fd00:50::80/121")};
    CHECK_THROWS_AS(ServerCore(bad), tn::ParseError);  // across peers
    bad.peers[1].routes6 = {parse_cidr6("fd00:99::/80")};
    CHECK_THROWS_AS(ServerCore(bad), tn::ParseError);  // inside subnet6
    bad.peers[1].routes6.clear();
    bad.subnet6.reset();
    CHECK_THROWS_AS(ServerCore(bad), tn::ParseError);  // without subnet6
}

TEST_CASE("a client keeps the kernel's link-local IPv6 talk off the tunnel, without counting it") {
    Net n(dual_stack());
    n.connect(n.c1, n.e1);
    Ip6 srv = *n.server.server_address6(), own = n.c1.push()->address6;
    Buf b;
    for (auto [src, dst] : {std::pair{Ip6{}, parse_ipv6("ff02::16")}, std::pair{parse_ipv6("fe80::1"), srv},
                            std::pair{own, parse_ipv6("ff02::2")}}) {
        auto pkt = ipv6_packet(src, dst);
        CHECK(n.c1.on_tun(b.data(), b.load_inner(pkt), n.now).send.empty());
    }
    CHECK(n.c1.stats().dropped == 0);
    auto pkt = ipv6_packet(own, srv);
    CHECK_FALSE(n.c1.on_tun(b.data(), b.load_inner(pkt), n.now).send.empty());
}
