// tn-route's per-vnet and per-serve traffic book (tools/tn-route/route_traffic.hpp): both ends'
// sides of a link, errors, live bytes, and the cap on vnets that went away.
#include <catch2/catch.hpp>

#include "route_traffic.hpp"

using namespace tn::route;

namespace {
bool same(const Traffic& t, std::uint64_t in, std::uint64_t out, std::uint64_t links, std::uint64_t open, std::uint64_t errors) {
    return t.bytes_in == in && t.bytes_out == out && t.links == links && t.open == open && t.errors == errors;
}
}  // namespace

TEST_CASE("a link counts for its serve, its serving vnet and, turned round, its using vnet") {
    TrafficBook b;
    b.vnet_up({"g", "home"});
    b.vnet_up({"g", "office"});
    LinkTag pair{"g", "home", "office", 700}, vhost{"g", "home", "", 701};
    b.opened(pair);
    b.opened(vhost);
    CHECK(same(b.all().at({"g", "home"}).total, 0, 0, 2, 2, 0));
    auto now = b.all();
    TrafficBook::live(now, pair, 10, 3);
    CHECK(same(now.at({"g", "home"}).serves.at(700), 10, 3, 1, 1, 0));
    CHECK(same(now.at({"g", "office"}).total, 3, 10, 1, 1, 0));
    CHECK(same(b.all().at({"g", "home"}).serves.at(700), 0, 0, 1, 1, 0));  // the copy only
    b.closed(pair, 100, 64, false);
    b.closed(vhost, 59, 130, true);
    b.failed("g", "home", 702);
    const auto& home = b.all().at({"g", "home"});
    CHECK(same(home.serves.at(700), 100, 64, 1, 0, 0));
    CHECK(same(home.serves.at(701), 59, 130, 1, 0, 1));
    CHECK(same(home.serves.at(702), 0, 0, 0, 0, 1));
    CHECK(same(home.total, 159, 194, 2, 0, 2));
    CHECK(same(b.all().at({"g", "office"}).total, 64, 100, 1, 0, 0));
    CHECK(b.all().at({"g", "office"}).serves.empty());
}

TEST_CASE("vnets that went away are kept up to the cap, oldest first, never with a link open") {
    TrafficBook b;
    auto key = [](int i) { return TrafficBook::Key{"g", "v" + std::to_string(i)}; };
    b.vnet_up(key(0));
    b.opened(LinkTag{"g", "v0", "", 1});
    b.vnet_down(key(0));  // gone with a link still open
    const int n = static_cast<int>(TrafficBook::kKeepDeparted) + 10;
    for (int i = 1; i <= n; ++i) {
        b.vnet_up(key(i));
        b.closed(LinkTag{"g", "v" + std::to_string(i), "", 1}, 1, 1, false);
        b.vnet_down(key(i));
    }
    CHECK(b.all().size() == TrafficBook::kKeepDeparted);
    CHECK(b.all().count(key(0)) == 1);  // its link is open: kept
    CHECK(b.all().count(key(1)) == 0);
    CHECK(b.all().count(key(n)) == 1);
    // A name up twice (names need not be unique) stays live until both are down.
    b.vnet_up({"g", "twin"});
    b.vnet_up({"g", "twin"});
    b.vnet_down({"g", "twin"});
    CHECK(b.all().at({"g", "twin"}).live == 1);
}
