// RouteCursor: which route of a failover list a vnet tries next, after failed attempts, a lost
// session and a reload (tn-vnet(1), Failover).
#include <catch2/catch.hpp>

#include "route_cursor.hpp"

using tn::vnet::RouteCursor;
using Wait = RouteCursor::Wait;

TEST_CASE("a round tries every address in order at once, then backs off and starts from the top") {
    RouteCursor c(3);
    CHECK(c.current() == 0);
    CHECK(c.attempt_failed() == Wait::hop);
    CHECK(c.current() == 1);
    CHECK(c.attempt_failed() == Wait::hop);
    CHECK(c.current() == 2);
    CHECK(c.attempt_failed() == Wait::backoff);
    CHECK(c.current() == 0);
    CHECK(c.attempt_failed() == Wait::hop);  // the next round is a whole round again
    CHECK(c.current() == 1);
}

TEST_CASE("a lost session moves to the next address; the lost one is tried last, then the backoff") {
    RouteCursor c(3);
    CHECK(c.attempt_failed() == Wait::hop);  // 0 dead: the session is on 1
    CHECK(c.current() == 1);
    CHECK(c.session_lost() == Wait::hop);
    CHECK(c.current() == 2);
    CHECK(c.attempt_failed() == Wait::hop);
    CHECK(c.current() == 0);
    CHECK(c.attempt_failed() == Wait::backoff);  // 1, just lost, waits for the next round
    CHECK(c.current() == 0);
}

TEST_CASE("with two routes a lost session goes straight to the other, and back only after a backoff") {
    RouteCursor c(2);
    CHECK(c.session_lost() == Wait::hop);
    CHECK(c.current() == 1);
    CHECK(c.attempt_failed() == Wait::backoff);
    CHECK(c.current() == 0);
}

TEST_CASE("one route: a lost session or a failed attempt is the backoff, as before lists") {
    RouteCursor c(1);
    CHECK(c.session_lost() == Wait::backoff);
    CHECK(c.current() == 0);
    CHECK(c.attempt_failed() == Wait::backoff);
    CHECK(c.current() == 0);
}

TEST_CASE("a reload keeps the route at its new place, or starts a round when it left the list") {
    RouteCursor c(3);
    c.session_lost();  // lost 0: on 1, with 2 left in this round
    REQUIRE(c.current() == 1);
    c.relist(2, 0);  // reordered: the same route is now first
    CHECK(c.current() == 0);
    CHECK(c.attempt_failed() == Wait::hop);  // the rest of the round fits the shorter list
    CHECK(c.current() == 1);
    CHECK(c.attempt_failed() == Wait::backoff);
    c.relist(4, std::nullopt);  // the route left the list
    CHECK(c.current() == 0);
    CHECK(c.size() == 4);
    c.relist(2, 5);  // an index past the list is a new round, never out of range
    CHECK(c.current() == 0);
}
