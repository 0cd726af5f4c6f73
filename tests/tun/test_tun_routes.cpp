// Unit tests of the client's route plan (lib/tun/route_plan): a pushed default route never replaces
// the host's, the server stays reachable over the underlay, and the state file reads back.
#include <catch2/catch.hpp>

#include "tun/route_plan.hpp"

using namespace tn::tun;

namespace {
std::vector<std::string> strs(const std::vector<HostRoute>& rs) {
    std::vector<std::string> out;
    for (auto& r : rs) out.push_back(r.str());
    return out;
}
}  // namespace

TEST_CASE("a pushed default route becomes two halves plus a host route to the server") {
    auto u = parse_route_get("203.0.113.7 via 10.201.0.1 dev eth0 src 10.201.0.2 uid 0 \\    cache \n");
    REQUIRE(u);
    CHECK(u->dev == "eth0");
    CHECK(ipv4_str(*u->via) == "10.201.0.1");
    auto plan = plan_routes({parse_cidr("0.0.0.0/0")}, "tnc0", parse_ipv4("203.0.113.7"), u);
    CHECK(strs(plan) == std::vector<std::string>{"203.0.113.7/32 via 10.201.0.1 dev eth0", "0.0.0.0/1 dev tnc0",
                                                 "128.0.0.0/1 dev tnc0"});
}

TEST_CASE("a host route to the server only when a pushed route covers it") {
    auto u = parse_route_get("192.168.77.1 dev veth0 src 192.168.77.2 uid 0\n    cache\n");
    REQUIRE(u);
    CHECK_FALSE(u->via);
    CHECK(strs(plan_routes({parse_cidr("10.88.0.0/16")}, "tn0", parse_ipv4("192.168.77.1"), u)) ==
          std::vector<std::string>{"10.88.0.0/16 dev tn0"});
    CHECK(strs(plan_routes({parse_cidr("192.168.0.0/16")}, "tn0", parse_ipv4("192.168.77.1"), u)) ==
          std::vector<std::string>{"192.168.77.1/32 dev veth0", "192.168.0.0/16 dev tn0"});
    // A server on this host, an IPv6 server or an unknown path: nothing to pin.
    auto local = parse_route_get("local 127.0.0.1 dev lo table local src 127.0.0.1 uid 0\n");
    REQUIRE(local);
    CHECK(local->local);
    CHECK(plan_routes({parse_cidr("0.0.0.0/0")}, "tn0", parse_ipv4("127.0.0.1"), local).size() == 2);
    CHECK(plan_routes({parse_cidr("0.0.0.0/0")}, "tn0", std::nullopt, u).size() == 2);
    CHECK(plan_routes({parse_cidr("0.0.0.0/0")}, "tn0", parse_ipv4("192.168.77.1"), std::nullopt).size() == 2);
    // A lookup that already points into the tunnel is not an underlay.
    auto inside = parse_route_get("192.168.77.1 dev tn0 src 10.99.0.2 uid 0\n");
    CHECK(plan_routes({parse_cidr("0.0.0.0/0")}, "tn0", parse_ipv4("192.168.77.1"), inside).size() == 2);
}

TEST_CASE("duplicate pushed routes are planned once") {
    auto plan = plan_routes({parse_cidr("0.0.0.0/0"), parse_cidr("0.0.0.0/1"), parse_cidr("10.0.0.0/8"),
                             parse_cidr("10.0.0.0/8")},
                            "tn0", std::nullopt, std::nullopt);
    CHECK(strs(plan) == std::vector<std::string>{"0.0.0.0/1 dev tn0", "128.0.0.0/1 dev tn0", "10.0.0.0/8 dev tn0"});
}

TEST_CASE("the state file reads back and refuses what is not a route") {
    auto u = parse_route_get("203.0.113.7 via 10.201.0.1 dev eth0\n");
    auto plan = plan_routes({parse_cidr("0.0.0.0/0")}, "tnc0", parse_ipv4("203.0.113.7"), u);
    CHECK(parse_routes(format_routes(plan)) == plan);
    auto junk = parse_routes("0.0.0.0/1 dev tnc0 table 5\n10.0.0.0/8 dev\n10.0.0.0/33 dev x\n"
                             "10.0.0.0/8 via nope dev x\n10.0.0.0/8 dev a;b\n1.2.3.0/24 dev ok\n");
    CHECK(strs(junk) == std::vector<std::string>{"1.2.3.0/24 dev ok"});
    CHECK_FALSE(parse_route_get("RTNETLINK answers: Network is unreachable\n"));
}

TEST_CASE("the underlay from the main table when the lookup points into the tunnel") {
    std::string table = "default via 10.205.0.1 dev wlan0 proto dhcp metric 600 \n"
                        "default via 10.201.0.1 dev eth0 proto static metric 100 \n"
                        "0.0.0.0/1 dev tnc0 scope link \n"
                        "128.0.0.0/1 dev tnc0 scope link \n"
                        "10.205.0.0/24 dev wlan0 proto kernel scope link src 10.205.0.2 \n"
                        "blackhole 10.250.0.0/16 \n";
    auto u = underlay_from_table(table, parse_ipv4("10.202.0.2"), "tnc0");
    REQUIRE(u);  // the halves are ours; of the two defaults the lower metric
    CHECK(u->dev == "eth0");
    CHECK(ipv4_str(*u->via) == "10.201.0.1");
    u = underlay_from_table(table, parse_ipv4("10.205.0.9"), "tnc0");
    REQUIRE(u);  // the most specific route wins
    CHECK(u->dev == "wlan0");
    CHECK_FALSE(u->via);
    CHECK(underlay_from_table(table, parse_ipv4("10.250.0.1"), "tnc0")->dev == "eth0");  // not the blackhole
    CHECK_FALSE(underlay_from_table("0.0.0.0/1 dev tnc0\n128.0.0.0/1 dev tnc0\n", parse_ipv4("10.202.0.2"), "tnc0"));
}
