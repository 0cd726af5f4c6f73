// The route registry core: vnet-v2's id rules, group isolation, remote ports, limits, unserve timers.
#include <catch2/catch.hpp>

#include "base/error.hpp"
#include "relay/claims.hpp"
#include "relay/registry.hpp"

using namespace tn::relay;

namespace {
ServeSpec spec(std::uint16_t id, std::string name, std::uint16_t port = 22, std::uint16_t remote = 0) {
    ServeSpec s;
    s.id = id;
    s.name = std::move(name);
    s.port = port;
    s.remote_port = remote;
    return s;
}
}  // namespace

TEST_CASE("static ids are kept, and a conflict is refused") {
    Registry r;
    auto a = r.add_vnet("g", "home", 1).id;
    auto b = r.add_vnet("g", "other", 2).id;
    auto s1 = r.add_serve(a, spec(700, "ssh"));
    CHECK(s1.ok);
    CHECK(s1.id == 700);
    CHECK_FALSE(s1.reassigned);
    auto s2 = r.add_serve(b, spec(700, "ssh2"));
    CHECK_FALSE(s2.ok);
    CHECK_THAT(s2.message, Catch::Contains("conflict") && Catch::Contains("700"));
    CHECK(r.find_serve("g", 700)->vnet_id == a);
}

TEST_CASE("dynamic ids are assigned, kept when free and reassigned on conflict") {
    Registry r;
    auto a = r.add_vnet("g", "a", 1).id;
    auto s0 = r.add_serve(a, spec(0, "x"));
    CHECK(s0.ok);
    CHECK(s0.id == 1);
    CHECK_FALSE(s0.reassigned);
    auto s1 = r.add_serve(a, spec(42, "y"));
    CHECK(s1.id == 42);
    auto s2 = r.add_serve(a, spec(42, "z"));
    CHECK(s2.ok);
    CHECK(s2.reassigned);
    CHECK(s2.id == 2);
    CHECK(r.add_serve(a, spec(1000, "bad")).ok == false);
    CHECK_FALSE(r.add_serve(a, spec(5, "noport", 0)).ok);
}

TEST_CASE("groups isolate ids, lists and lookups") {
    Registry r;
    auto a = r.add_vnet("red", "a", 1).id;
    auto b = r.add_vnet("blue", "b", 2).id;
    CHECK(r.add_serve(a, spec(700, "ssh")).ok);
    CHECK(r.add_serve(b, spec(700, "ssh")).ok);  // the same static id in another group is no conflict
    CHECK(r.find_serve("red", 700)->vnet_id == a);
    CHECK(r.find_serve("blue", 700)->vnet_id == b);
    CHECK(r.serves("red").size() == 1);
    CHECK(r.vnets("blue").size() == 1);
    CHECK(r.vnets("blue")[0].name == "b");
    CHECK(r.find_serve("green", 700) == nullptr);
}

TEST_CASE("removing a vnet frees its ids and remote ports at once") {
    Registry r;
    auto a = r.add_vnet("g", "a", 1).id;
    CHECK(r.add_serve(a, spec(700, "ssh", 22, 6000)).ok);
    CHECK(r.add_serve(a, spec(0, "web", 80)).ok);
    auto b = r.add_vnet("g", "b", 2).id;
    auto taken = r.add_serve(b, spec(0, "other", 80, 6000));
    CHECK_FALSE(taken.ok);
    CHECK_THAT(taken.message, Catch::Contains("remote_port 6000"));
    auto freed = r.remove_vnet(a);
    CHECK(freed.size() == 2);
    CHECK(r.find_serve("g", 700) == nullptr);
    CHECK(r.add_serve(b, spec(700, "ssh", 22, 6000)).ok);
    CHECK(r.vnet(a) == nullptr);
}

TEST_CASE("a vnet may only remove its own serves") {
    Registry r;
    auto a = r.add_vnet("g", "a", 1).id;
    auto b = r.add_vnet("g", "b", 2).id;
    CHECK(r.add_serve(a, spec(600, "s")).ok);
    CHECK_FALSE(r.remove_serve(b, 600));
    CHECK(r.remove_serve(a, 600));
    CHECK(r.find_serve("g", 600) == nullptr);
}

TEST_CASE("the same instance reconnecting replaces its stale session") {
    Registry r;
    auto first = r.add_vnet("g", "a", 99);
    CHECK(r.add_serve(first.id, spec(700, "ssh")).ok);
    auto second = r.add_vnet("g", "a", 99);
    CHECK(second.ok);
    REQUIRE(second.replaced);
    CHECK(*second.replaced == first.id);
    CHECK(second.freed.size() == 1);
    CHECK(r.add_serve(second.id, spec(700, "ssh")).ok);
    CHECK(r.vnet_count() == 1);
}

// add_vnet finds a stale instance and counts a group by index (a restart registers every vnet at
// once): the indexes must follow removals and replacements exactly as the records do.
TEST_CASE("the group and instance indexes follow removals and replacements") {
    Registry r(Limits{2, 4});
    auto a = r.add_vnet("g", "a", 7);
    auto b = r.add_vnet("g", "b", 8);
    CHECK(r.add_vnet("h", "a", 7).replaced == std::nullopt);  // the same instance in another group is another vnet
    CHECK_FALSE(r.add_vnet("g", "c", 9).ok);                  // g is full
    r.remove_vnet(b.id);
    CHECK(r.vnets("g").size() == 1);
    auto c = r.add_vnet("g", "c", 9);  // b's place is free again
    REQUIRE(c.ok);
    CHECK_FALSE(c.replaced);
    auto a2 = r.add_vnet("g", "a", 7);  // a reconnects: replaces its stale session, the group stays at 2
    REQUIRE(a2.ok);
    CHECK(a2.replaced == a.id);
    CHECK(r.vnets("g").size() == 2);
    CHECK(r.members("g") == std::set<std::uint32_t>{c.id, a2.id});  // a's old id is gone, b's too
    CHECK(r.members("nobody").empty());
    CHECK(r.add_vnet("g", "a", 8).ok == false);  // b's old instance is not held by anyone: a new vnet, over the limit
    r.remove_vnet(a2.id);
    r.remove_vnet(c.id);
    CHECK(r.groups() == std::vector<std::string>{"h"});
    CHECK(r.add_vnet("g", "d", 7).replaced == std::nullopt);  // a's instance left with it
    REQUIRE(r.add_serve(r.vnets("h")[0].id, spec(0, "x")).ok);
    CHECK(r.serves_of(r.vnets("h")[0].id).size() == 1);
    CHECK(r.serves_of(r.vnets("g")[0].id).empty());
}

TEST_CASE("limits refuse with a clear message") {
    Registry r(Limits{2, 2});
    CHECK(r.add_vnet("g", "a", 1).ok);
    CHECK(r.add_vnet("g", "b", 2).ok);
    auto third = r.add_vnet("g", "c", 3);
    CHECK_FALSE(third.ok);
    CHECK_THAT(third.message, Catch::Contains("limit"));
    CHECK(r.add_vnet("h", "c", 3).ok);  // another group has its own count
    auto a = r.vnets("g")[0].id;
    CHECK(r.add_serve(a, spec(0, "1")).ok);
    CHECK(r.add_serve(a, spec(0, "2")).ok);
    auto over = r.add_serve(a, spec(0, "3"));
    CHECK_FALSE(over.ok);
    CHECK_THAT(over.message, Catch::Contains("limit"));
}

TEST_CASE("dynamic ids run out with a refusal, static ids still work") {
    Registry r(Limits{64, 1000});
    auto a = r.add_vnet("g", "a", 1).id;
    for (int i = 0; i < 499; ++i) REQUIRE(r.add_serve(a, spec(0, "s")).ok);
    auto full = r.add_serve(a, spec(0, "s"));
    CHECK_FALSE(full.ok);
    CHECK_THAT(full.message, Catch::Contains("dynamic"));
    CHECK(r.add_serve(a, spec(999, "s")).ok);
}

TEST_CASE("unserve timers: 3 min unused, 1 min after the last close") {
    UnserveTimers t(180000, 60000);
    t.add(1, 0);
    t.add(2, 0);
    CHECK(t.expire(179999).empty());
    t.opened(2);
    auto gone = t.expire(180000);
    REQUIRE(gone.size() == 1);
    CHECK(gone[0] == 1);
    CHECK(t.expire(10000000).empty());  // an open connection keeps it
    t.opened(2);
    t.closed(2, 200000);
    CHECK(t.expire(300000).empty());  // one still open
    t.closed(2, 300000);
    CHECK(t.expire(359999).empty());
    CHECK(t.expire(360000) == std::vector<std::uint16_t>{2});
    CHECK(t.size() == 0);
}

TEST_CASE("custom domains route by host, exact before wildcard, and conflicts are refused") {
    Registry r;
    auto a = r.add_vnet("g", "a", 1).id;
    auto b = r.add_vnet("other", "b", 2).id;
    auto web = spec(0, "web", 80);
    web.domains = {"WWW.Example.com", "*.example.com"};
    auto s1 = r.add_serve(a, web);
    REQUIRE(s1.ok);
    auto api = spec(0, "api", 81);
    api.domains = {"api.example.com", "*.dev.example.com"};
    auto s2 = r.add_serve(b, api);
    REQUIRE(s2.ok);
    CHECK(r.find_by_host("www.example.com")->spec.name == "web");
    CHECK(r.find_by_host("WWW.EXAMPLE.COM:8080")->spec.name == "web");
    CHECK(r.find_by_host("www.example.com.")->spec.name == "web");
    CHECK(r.find_by_host("api.example.com")->spec.name == "api");   // exact beats *.example.com
    CHECK(r.find_by_host("x.example.com")->spec.name == "web");     // wildcard
    CHECK(r.find_by_host("a.b.example.com")->spec.name == "web");   // deeper names match too
    CHECK(r.find_by_host("x.dev.example.com")->spec.name == "api"); // the most specific wildcard wins
    CHECK(r.find_by_host("example.com") == nullptr);                // *.example.com is not example.com
    CHECK(r.find_by_host("example.org") == nullptr);
    CHECK(r.find_by_host("") == nullptr);

    // Domains are route-wide: another group cannot take one either.
    auto dup = spec(0, "dup", 82);
    dup.domains = {"www.example.COM"};
    auto s3 = r.add_serve(b, dup);
    CHECK_FALSE(s3.ok);
    CHECK_THAT(s3.message, Catch::Contains("www.example.com") && Catch::Contains("already routed"));
    auto bad = spec(0, "bad", 83);
    bad.domains = {"exa mple.com"};
    CHECK_THAT(r.add_serve(a, bad).message, Catch::Contains("not allowed"));
    bad.domains = {"a.*.com"};
    CHECK_FALSE(r.add_serve(a, bad).ok);
    bad.domains = {"x.org", "X.org"};
    CHECK_FALSE(r.add_serve(a, bad).ok);
    CHECK(r.domain_count() == 4);

    // A dropped vnet frees its domains at once.
    r.remove_vnet(a);
    CHECK(r.find_by_host("www.example.com") == nullptr);
    CHECK(r.domain_count() == 2);
    CHECK(r.add_serve(b, dup).ok);
    CHECK(r.remove_serve(b, r.find_by_host("www.example.com")->spec.id));
    CHECK(r.find_by_host("www.example.com") == nullptr);
}

TEST_CASE("domain names are checked and Host headers reduced to their name") {
    CHECK(normalize_domain("Foo-1.Example.COM") == "foo-1.example.com");
    CHECK(normalize_domain("*.example.com") == "*.example.com");
    CHECK_THROWS_AS(normalize_domain("*."), tn::ParseError);
    CHECK_THROWS_AS(normalize_domain("-a.com"), tn::ParseError);
    CHECK_THROWS_AS(normalize_domain("a..com"), tn::ParseError);
    CHECK_THROWS_AS(normalize_domain(std::string(64, 'a') + ".com"), tn::ParseError);
    CHECK_THROWS_AS(normalize_domain(""), tn::ParseError);
    CHECK(host_name("Example.com:8080") == "example.com");
    CHECK(host_name("[::1]:80") == "[::1]");
    CHECK(host_name("a.b.") == "a.b");
}

TEST_CASE("group claims: domain patterns, top-level wildcards refused, port ranges") {
    GroupClaims g;
    g.domains = {normalize_domain_pattern("*.A.example.org"), normalize_domain_pattern("b.example.org")};
    CHECK(domain_allowed(g, "x.a.example.org"));
    CHECK(domain_allowed(g, "y.x.a.example.org"));
    CHECK(domain_allowed(g, "*.x.a.example.org"));
    CHECK(domain_allowed(g, "b.example.org"));
    CHECK_FALSE(domain_allowed(g, "a.example.org"));    // a wildcard never covers its apex
    CHECK(domain_allowed(g, "*.a.example.org"));        // the wildcard itself: all it allows
    CHECK_FALSE(domain_allowed(g, "x.b.example.org"));
    CHECK_FALSE(domain_allowed(g, "xa.example.org"));
    CHECK_FALSE(domain_allowed(GroupClaims{}, "x.a.example.org"));  // no list: nothing
    CHECK_THROWS_AS(normalize_domain_pattern("*"), tn::ParseError);
    CHECK_THROWS_AS(normalize_domain_pattern("*.com"), tn::ParseError);
    CHECK_THROWS_AS(normalize_domain("*.com"), tn::ParseError);
    g.ports = {parse_port_range("6000"), parse_port_range("7000-7100")};
    CHECK(port_allowed(g, 6000));
    CHECK(port_allowed(g, 7050));
    CHECK_FALSE(port_allowed(g, 6001));
    CHECK_FALSE(port_allowed(GroupClaims{}, 6000));
    CHECK_THROWS_WITH(parse_port_range("0"), Catch::Contains("not a port"));
    CHECK_THROWS_WITH(parse_port_range("70000"), Catch::Contains("not a port"));
    CHECK_THROWS_WITH(parse_port_range("9-3"), Catch::Contains("ends before it starts"));
    CHECK_THROWS_WITH(parse_port_range("1-x"), Catch::Contains("not a port"));
}

TEST_CASE("released claims stay with their group for the grace period") {
    using namespace std::chrono;
    Reservations r(seconds(300));
    Reservations::Clock::time_point t0{};
    r.release("red", {"app.example.org"}, 6000, t0);
    CHECK(r.domain_holder("app.example.org", "blue", t0 + seconds(10)) == std::optional<std::string>("red"));
    CHECK(r.port_holder(6000, "blue", t0 + seconds(10)) == std::optional<std::string>("red"));
    CHECK_FALSE(r.domain_holder("app.example.org", "red", t0 + seconds(10)));  // its own group takes it back
    CHECK_FALSE(r.port_holder(6000, "blue", t0 + seconds(300)));               // the grace is over
    r.claimed({"app.example.org"}, 6000);
    CHECK(r.size() == 0);
    r.release("red", {"x.example.org"}, 0, t0);
    r.expire(t0 + seconds(301));
    CHECK(r.size() == 0);
}
