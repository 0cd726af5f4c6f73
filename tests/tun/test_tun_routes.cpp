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

// The full tunnel by policy routing (lib/tun/route_plan_policy).
#include "tun/route_plan_policy.hpp"

namespace {
std::vector<std::string> lines(const std::vector<PolicyStep>& ss, bool del = false) {
    std::vector<std::string> out;
    for (auto& s : ss) {
        std::string l;
        for (auto& a : del ? s.del_args() : s.add_args()) l += (l.empty() ? "" : " ") + a;
        out.push_back(l);
    }
    return out;
}
}  // namespace

TEST_CASE("policy plan: a table with the default route, then the suppressing and the mark rules, per family") {
    auto plan = plan_policy("tnc0", 29806, true, true);
    CHECK(lines(plan) == std::vector<std::string>{
                             "-4 route add 0.0.0.0/0 dev tnc0 table 29806",
                             "-4 rule add table main suppress_prefixlength 0 priority 32764",
                             "-4 rule add not fwmark 29806 table 29806 priority 32765",
                             "-6 route add ::/0 dev tnc0 table 29806",
                             "-6 rule add table main suppress_prefixlength 0 priority 32764",
                             "-6 rule add not fwmark 29806 table 29806 priority 32765"});
    // Undone by the exact same spec, so a rule of the same priority that is not ours stays.
    CHECK(lines(plan, true)[2] == "-4 rule del not fwmark 29806 table 29806 priority 32765");
}

TEST_CASE("policy plan: only the families asked; none with mark 0") {
    CHECK(lines(plan_policy("tnc0", 7, false, true)) == std::vector<std::string>{
                                                            "-6 route add ::/0 dev tnc0 table 7",
                                                            "-6 rule add table main suppress_prefixlength 0 priority 32764",
                                                            "-6 rule add not fwmark 7 table 7 priority 32765"});
    CHECK(plan_policy("tnc0", 7, true, false).size() == 3);
    CHECK(plan_policy("tnc0", 7, false, false).empty());
    CHECK(plan_policy("tnc0", 0, true, true).empty());  // fwmark = 0: no policy routing
}

TEST_CASE("policy steps read back from the state file; route lines and junk are skipped both ways") {
    auto plan = plan_policy("tnc0", 29806, true, true);
    auto routes = std::vector<HostRoute>{{parse_cidr("10.0.0.0/8"), std::nullopt, "tnc0"}};
    auto text = format_routes(routes) + format_policy(plan) +
                "policy rule 4 0\npolicy route 4 5 bad;dev\npolicy rule 5 7\npolicy suppress 4 0\n"
                "policy rule 4 7 9 9\npolicy suppress 6 x\nrm -rf /\n";
    CHECK(parse_policy(text) == plan);
    CHECK(parse_routes(text) == routes);
}

TEST_CASE("one reader for every state line: the words of each line that has any") {
    CHECK(word_lines("a  b\n\n \t\nc\td \n e") ==
          std::vector<std::vector<std::string>>{{"a", "b"}, {"c", "d"}, {"e"}});
    CHECK(word_lines("").empty());
}

namespace {
const char* default_rules = "0:\tfrom all lookup local\n32766:\tfrom all lookup main\n32767:\tfrom all lookup default\n";
}

TEST_CASE("rule priorities: the highest free pair below main's rule, in neither family's list") {
    std::string six = "0:\tfrom all lookup local\n32766:\tfrom all lookup main\n";
    CHECK(free_policy_priority(default_rules + six) == 32764);  // only the default rules: wg-quick's pair
    CHECK(free_policy_priority(std::string(default_rules) + "32765:\tfrom 192.0.2.9 lookup 100\n") == 32763);
    // Taken in IPv6 only: both families get the same pair, so it is free in both.
    CHECK(free_policy_priority(default_rules + six + "32764:\tfrom all lookup 7\n") == 32762);
    // Main moved (its own rule, not one with a selector that looks up main): just below it.
    CHECK(free_policy_priority("0:\tfrom all lookup local\n500:\tfrom 10.0.0.0/8 lookup main\n"
                               "1000:\tfrom all lookup main\n998:\tfrom all lookup 5\n") == 996);
    CHECK(free_policy_priority("") == 32764);  // no list (no IPv4 on this kernel): main where it always is
    CHECK(free_policy_priority("junk\n\t  continued line\n:\tx\n12a:\tfrom all\n") == 32764);
    CHECK_FALSE(free_policy_priority("0:\tfrom all lookup local\n2:\tfrom all lookup main\n"));
    std::string full;
    for (int p = 1; p < 32766; p += 2) full += std::to_string(p) + ":\tfrom all lookup 9\n";
    CHECK_FALSE(free_policy_priority(full));  // every other one taken: no two in a row
}

TEST_CASE("policy rules at the chosen priority, recorded with it; a line of the fixed-priority versions reads as then") {
    auto plan = plan_policy("tnc0", 29806, true, false, 32762);
    CHECK(lines(plan, true) == std::vector<std::string>{"-4 route del 0.0.0.0/0 dev tnc0 table 29806",
                                                        "-4 rule del table main suppress_prefixlength 0 priority 32762",
                                                        "-4 rule del not fwmark 29806 table 29806 priority 32763"});
    CHECK(format_policy(plan) == "policy route 4 29806 tnc0\npolicy suppress 4 32762\npolicy rule 4 29806 32763\n");
    CHECK(parse_policy(format_policy(plan)) == plan);
    CHECK(parse_policy("policy route 4 29806 tnc0\npolicy suppress 4\npolicy rule 4 29806\n") ==
          plan_policy("tnc0", 29806, true, false));
}

TEST_CASE("strict rp_filter: the higher of all and the device, 1 only") {
    CHECK(rp_filter_strict(1, 0));
    CHECK(rp_filter_strict(0, 1));
    CHECK_FALSE(rp_filter_strict(1, 2));  // loose wins over strict
    CHECK_FALSE(rp_filter_strict(0, 0));
    CHECK_FALSE(rp_filter_strict(2, 0));
}
