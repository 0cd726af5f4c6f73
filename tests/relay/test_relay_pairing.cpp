// The route's link pairing core: budgets, deadlines, pairing, every way a pending link ends, and the
// pools of pre-opened links with their caps.
#include <catch2/catch.hpp>

#include <string>

#include "relay/pairing_core.hpp"

using namespace tn::relay;
using Pairing = LinkPairing<int, std::string>;  // pooled links are ints; a pending link carries a name
using std::chrono::milliseconds;

namespace {
const Pairing::Clock::time_point t0{};

PendingKey key(std::uint32_t vnet, std::uint16_t id, std::string group = "g", UserKind kind = UserKind::link,
               std::string source = {}) {
    return PendingKey{vnet, id, std::move(group), kind, std::move(source)};
}

std::uint64_t wait(Pairing& p, PendingKey k, Pairing::Clock::time_point now = t0) {
    auto id = p.next_link_id();
    p.wait(id, std::move(k), "user" + std::to_string(id), now);
    return id;
}
}  // namespace

TEST_CASE("a pending link is paired by its serving vnet only, once") {
    Pairing p;
    p.vnet_up(1);
    auto id = wait(p, key(1, 7));
    CHECK(p.pending_count() == 1);
    CHECK_FALSE(p.pair(id, 2));      // another vnet's LINK_ACCEPT
    CHECK_FALSE(p.pair(id + 1, 1));  // an unknown link id
    auto got = p.pair(id, 1);
    REQUIRE(got);
    CHECK(got->data == "user" + std::to_string(id));
    CHECK(got->key.id == 7);
    CHECK(p.pending_count() == 0);
    CHECK_FALSE(p.pair(id, 1));
}

TEST_CASE("link ids are never reused") {
    Pairing p;
    auto a = p.next_link_id();
    auto b = p.next_link_id();
    CHECK(a != b);
    CHECK(a != 0);
}

TEST_CASE("a vnet's link waits 10 s, a public client 5 s; tick ends the late ones with timeout") {
    Pairing p;
    auto vnet_link = wait(p, key(1, 7));
    auto pub = wait(p, key(1, 7, "g", UserKind::tcp, "10.0.0.1"));
    REQUIRE(p.next_deadline());
    CHECK(*p.next_deadline() == t0 + milliseconds(5000));
    CHECK(p.tick(t0 + milliseconds(5000)).empty());  // at the deadline it still waits
    auto late = p.tick(t0 + milliseconds(5001));
    REQUIRE(late.size() == 1);
    CHECK(late[0].link_id == pub);
    CHECK(late[0].why == PendingEnd::timeout);
    CHECK(*p.next_deadline() == t0 + milliseconds(10000));
    late = p.tick(t0 + milliseconds(10001));
    REQUIRE(late.size() == 1);
    CHECK(late[0].link_id == vnet_link);
    CHECK_FALSE(p.next_deadline());
}

TEST_CASE("every end reason: LINK_FAIL, closed standby link, protocol error, serve gone, shutdown") {
    Pairing p;
    p.vnet_up(1);
    p.vnet_up(2);
    for (auto why : {PendingEnd::serve_failed, PendingEnd::link_closed, PendingEnd::protocol}) {
        auto id = wait(p, key(1, 7));
        CHECK_FALSE(p.end(id, why, 2));  // only its serving vnet may fail it
        auto e = p.end(id, why, 1);
        REQUIRE(e);
        CHECK(e->why == why);
        CHECK(e->link_id == id);
        CHECK_FALSE(p.end(id, why));  // ended once
    }
    auto a = wait(p, key(1, 7));
    auto b = wait(p, key(2, 8));
    auto gone = p.vnet_down(1);
    REQUIRE(gone.ended.size() == 1);
    CHECK(gone.ended[0].link_id == a);
    CHECK(gone.ended[0].why == PendingEnd::serve_gone);
    auto stop = p.stop();
    REQUIRE(stop.ended.size() == 1);
    CHECK(stop.ended[0].link_id == b);
    CHECK(stop.ended[0].why == PendingEnd::shutdown);
    CHECK(p.pending_count() == 0);
}

TEST_CASE("end reasons have their texts and HTTP statuses") {
    CHECK(describe(PendingEnd::timeout) == "the serving vnet did not answer in time");
    CHECK(describe(PendingEnd::serve_gone) == "the serving vnet went away");
    CHECK(describe(PendingEnd::serve_failed) == "the serving vnet could not connect");
    CHECK(http_status(PendingEnd::timeout) == 504);
    CHECK(http_status(PendingEnd::serve_failed) == 502);
    CHECK(http_status(PendingEnd::link_closed) == 502);
}

TEST_CASE("budgets: the route, a group, a serve, public clients and one source") {
    PairingLimits l;
    l.pending_links = 16;
    l.public_per_source = 2;
    SECTION("one serve takes a quarter of the table") {
        Pairing p(l);
        for (int i = 0; i < 4; ++i) {
            REQUIRE(p.admit(key(1, 7)) == Refusal::none);
            wait(p, key(1, 7));
        }
        CHECK(p.admit(key(1, 7)) == Refusal::serve_full);
        CHECK(p.admit(key(1, 8)) == Refusal::none);
        CHECK(describe(Refusal::serve_full, "g", 7, "") == "too many pending links for serve 7");
    }
    SECTION("one group takes half of it; the other group still gets in; then the route is full") {
        Pairing p(l);
        for (std::uint16_t s = 1; s <= 8; ++s) wait(p, key(1, s));
        CHECK(p.admit(key(1, 20)) == Refusal::group_full);
        CHECK(describe(Refusal::group_full, "g", 20, "") == "too many pending links for group 'g'");
        for (std::uint16_t s = 1; s <= 8; ++s) {
            REQUIRE(p.admit(key(2, s, "h")) == Refusal::none);
            wait(p, key(2, s, "h"));
        }
        CHECK(p.admit(key(3, 1, "k")) == Refusal::route_full);
    }
    SECTION("one address waits in a few slots; public clients in half the table") {
        Pairing p(l);
        wait(p, key(1, 1, "g", UserKind::tcp, "a"));
        wait(p, key(1, 2, "g", UserKind::http, "a"));
        CHECK(p.admit(key(1, 3, "g", UserKind::tcp, "a")) == Refusal::source_full);
        CHECK(p.admit(key(1, 3, "g", UserKind::link)) == Refusal::none);  // vnets are not public
        for (std::uint16_t s = 1; s <= 6; ++s)
            wait(p, key(2, s, "h" + std::to_string(s), UserKind::tcp, std::to_string(s)));
        CHECK(p.admit(key(3, 1, "k", UserKind::tcp, "b")) == Refusal::public_full);
        CHECK(p.admit(key(3, 1, "k", UserKind::link)) == Refusal::none);
    }
}

TEST_CASE("pools: parked and standby links, their caps, and the session's end") {
    PairingLimits l;
    l.pooled = 3;
    l.reparked = 4;
    Pairing p(l);
    CHECK(p.pool(1, 10, false, false) == PoolVerdict::no_vnet);
    p.vnet_up(1);
    CHECK(p.pool(1, 10, false, false) == PoolVerdict::pooled);
    CHECK(p.pool(1, 11, true, false) == PoolVerdict::pooled);
    CHECK(p.pool(1, 12, true, false) == PoolVerdict::pooled);
    CHECK(p.pool(1, 13, false, false) == PoolVerdict::full);  // a vnet adds at most `pooled`
    CHECK(p.can_repark(1));
    CHECK(p.pool(1, 13, false, true) == PoolVerdict::pooled);  // a reused link: the higher cap
    CHECK_FALSE(p.can_repark(1));
    CHECK(p.pool(1, 14, true, true) == PoolVerdict::full);
    CHECK(p.pool_size(1) == 4);
    CHECK(p.standby_size(1) == 2);
    CHECK_FALSE(p.can_repark(2));  // no session
    SECTION("a standby link is taken oldest first; a dead one is dropped on the way") {
        auto got = p.take_standby(1, [](int c) { return c != 11; });
        REQUIRE(got);
        CHECK(*got == 12);
        CHECK_FALSE(p.pooled(1, 11));
        CHECK(p.standby_size(1) == 0);
        CHECK_FALSE(p.take_standby(1, [](int) { return true; }));
        CHECK(p.pool_size(1) == 2);
    }
    SECTION("a link that leaves the pool (LINK_OPEN or close) is unpooled once") {
        CHECK(p.unpool(1, 11));
        CHECK_FALSE(p.unpool(1, 11));
        CHECK(p.standby_size(1) == 1);
        CHECK(*p.take_standby(1, [](int) { return true; }) == 12);
    }
    SECTION("the session's end hands back every pooled link to close") {
        auto gone = p.vnet_down(1);
        CHECK(gone.links.size() == 4);
        CHECK_FALSE(p.unpool(1, 10));
        CHECK(p.pool(1, 10, false, false) == PoolVerdict::no_vnet);
        CHECK_FALSE(p.can_repark(1));
    }
}
