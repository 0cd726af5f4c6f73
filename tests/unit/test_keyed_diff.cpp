// Unit tests for lib/base/keyed_diff.hpp: what a reload adds, removes and changes, and what it leaves alone.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "base/keyed_diff.hpp"

using namespace tn;

namespace {
struct Group {
    std::string name, token;
    int ports = 0;
    bool operator==(const Group&) const = default;
};
std::string name_of(const Group& g) { return g.name; }
std::vector<std::string> names(const std::vector<Group>& v) {
    std::vector<std::string> out;
    for (const auto& g : v) out.push_back(g.name);
    return out;
}
// A key with == only (no ordering), as a forward rule is: the diff falls back to pairwise search.
struct Rule {
    int kind;
    std::string spec;
    bool operator==(const Rule&) const = default;
};
}  // namespace

TEST_CASE("keyed_diff splits a reload into removed, changed and added, in input order") {
    std::vector<Group> before{{"a", "t1", 1}, {"b", "t2", 2}, {"c", "t3", 3}, {"d", "t4", 4}};
    std::vector<Group> after{{"e", "t5", 5}, {"d", "t4", 4}, {"b", "T2", 2}, {"a", "t1", 1}, {"f", "t6", 6}};
    auto d = keyed_diff(before, after, name_of);
    CHECK(names(d.removed) == std::vector<std::string>{"c"});
    CHECK(names(d.added) == std::vector<std::string>{"e", "f"});
    REQUIRE(d.changed.size() == 1);
    CHECK(d.changed[0].key == "b");
    CHECK(d.changed[0].before.token == "t2");
    CHECK(d.changed[0].after.token == "T2");
    CHECK_FALSE(d.empty());
}

TEST_CASE("keyed_diff of equal inputs, reordered or not, is empty") {
    std::vector<Group> v{{"a", "t1", 1}, {"b", "t2", 2}};
    CHECK(keyed_diff(v, v, name_of).empty());
    std::vector<Group> reordered{v[1], v[0]};
    CHECK(keyed_diff(v, reordered, name_of).empty());
    CHECK(keyed_diff(std::vector<Group>{}, std::vector<Group>{}, name_of).empty());
}

TEST_CASE("keyed_diff from and to nothing") {
    std::vector<Group> v{{"a", "t1", 1}, {"b", "t2", 2}};
    auto up = keyed_diff(std::vector<Group>{}, v, name_of);
    CHECK(names(up.added) == std::vector<std::string>{"a", "b"});
    CHECK(up.removed.empty());
    CHECK(up.changed.empty());
    auto down = keyed_diff(v, std::vector<Group>{}, name_of);
    CHECK(names(down.removed) == std::vector<std::string>{"a", "b"});
    CHECK(down.added.empty());
}

TEST_CASE("keyed_diff counts a change only where `same` says so") {
    std::vector<Group> before{{"a", "t1", 1}, {"b", "t2", 2}};
    std::vector<Group> after{{"a", "t1", 9}, {"b", "T2", 2}};
    // Only a new token matters (a port change is applied in place without revoking anything).
    auto d = keyed_diff(before, after, name_of, [](const Group& x, const Group& y) { return x.token == y.token; });
    REQUIRE(d.changed.size() == 1);
    CHECK(d.changed[0].key == "b");
    // With the default (==), both changed.
    CHECK(keyed_diff(before, after, name_of).changed.size() == 2);
}

TEST_CASE("keyed_diff over maps keys by the map key") {
    std::map<std::string, int> before{{"a", 1}, {"b", 2}, {"c", 3}};
    std::map<std::string, int> after{{"b", 2}, {"c", 4}, {"d", 5}};
    auto d = keyed_diff(before, after, [](const auto& kv) { return kv.first; });
    REQUIRE(d.removed.size() == 1);
    CHECK(d.removed[0].first == "a");
    REQUIRE(d.added.size() == 1);
    CHECK(d.added[0].first == "d");
    REQUIRE(d.changed.size() == 1);
    CHECK(d.changed[0].key == "c");
    CHECK(d.changed[0].before.second == 3);
    CHECK(d.changed[0].after.second == 4);
}

TEST_CASE("keyed_diff with an entry that is its own key (== only) has no changes, only removals and additions") {
    std::vector<Rule> before{{1, "8080:x:80"}, {2, "9000:y:90"}};
    std::vector<Rule> after{{2, "9000:y:90"}, {1, "8081:x:80"}};
    auto d = keyed_diff(before, after, [](const Rule& r) { return r; });
    REQUIRE(d.removed.size() == 1);
    CHECK(d.removed[0].spec == "8080:x:80");
    REQUIRE(d.added.size() == 1);
    CHECK(d.added[0].spec == "8081:x:80");
    CHECK(d.changed.empty());
}

TEST_CASE("keyed_diff counts the first entry of a repeated key once") {
    std::vector<Group> before{{"a", "t1", 1}, {"a", "old", 0}};
    std::vector<Group> after{{"a", "t1", 1}, {"a", "other", 7}, {"b", "t2", 2}, {"b", "t3", 3}};
    auto d = keyed_diff(before, after, name_of);
    CHECK(d.removed.empty());
    CHECK(d.changed.empty());
    REQUIRE(d.added.size() == 1);
    CHECK(d.added[0].token == "t2");
}
