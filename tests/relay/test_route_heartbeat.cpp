// heartbeat_interval_for: the interval tn-route gives its vnets grows with the live sessions so that
// their PINGs stay near 1,000 per second, between 5 s and 10 s in whole seconds; heartbeat_update:
// which sessions a PONG carries a HEARTBEAT to (doc/PROTOCOL.relay.md §5).
#include <catch2/catch.hpp>

#include "heartbeat_rate.hpp"

using namespace std::chrono_literals;
using tn::route::heartbeat_interval_for;
using tn::route::heartbeat_update;
using tn::route::silence_timeout_for;

TEST_CASE("up to 5,000 sessions the interval is 5 s, as before the rate bound") {
    CHECK(heartbeat_interval_for(0, 1.0) == 5000ms);
    CHECK(heartbeat_interval_for(1, 1.0) == 5000ms);
    CHECK(heartbeat_interval_for(4999, 1.0) == 5000ms);
    CHECK(heartbeat_interval_for(5000, 1.0) == 5000ms);
}

TEST_CASE(
    "between 5,000 and 10,000 sessions it is one second per 1,000 sessions begun: at most 1,000 pings per second") {
    CHECK(heartbeat_interval_for(5001, 1.0) == 6000ms);
    CHECK(heartbeat_interval_for(5999, 1.0) == 6000ms);
    CHECK(heartbeat_interval_for(6000, 1.0) == 6000ms);
    CHECK(heartbeat_interval_for(6001, 1.0) == 7000ms);
    CHECK(heartbeat_interval_for(7500, 1.0) == 8000ms);
    CHECK(heartbeat_interval_for(9000, 1.0) == 9000ms);
    CHECK(heartbeat_interval_for(9001, 1.0) == 10000ms);
    CHECK(heartbeat_interval_for(10000, 1.0) == 10000ms);
}

TEST_CASE("the interval moves only when a thousand boundary is crossed, not with every session") {
    int moves = 0;
    for (std::size_t n = 1; n <= 12000; ++n)
        if (heartbeat_interval_for(n, 1.0) != heartbeat_interval_for(n - 1, 1.0)) ++moves;
    CHECK(moves == 5);  // 5 s -> 6, 7, 8, 9, 10 s
}

TEST_CASE("past 10,000 sessions it stays at 10 s, inside a version-5 vnet's 15 s of silence") {
    CHECK(heartbeat_interval_for(10001, 1.0) == 10000ms);
    CHECK(heartbeat_interval_for(1000000, 1.0) == 10000ms);
    CHECK(silence_timeout_for(heartbeat_interval_for(1000000, 1.0)) == 30000ms);
}

TEST_CASE("the time scale scales the bounded interval, never under 50 ms") {
    CHECK(heartbeat_interval_for(1, 0.2) == 1000ms);
    CHECK(heartbeat_interval_for(10000, 0.2) == 2000ms);
    CHECK(heartbeat_interval_for(7500, 0.5) == 4000ms);
    CHECK(heartbeat_interval_for(5001, 0.05) == 300ms);
    CHECK(heartbeat_interval_for(1, 0.05) == 250ms);
    CHECK(heartbeat_interval_for(1, 0.001) == 50ms);
    CHECK(heartbeat_interval_for(10000, 0.001) == 50ms);
}

TEST_CASE("a session is dropped after three intervals of silence: 15 s at 5 s, as before") {
    CHECK(silence_timeout_for(5000ms) == 15000ms);
    CHECK(silence_timeout_for(heartbeat_interval_for(10000, 1.0)) == 30000ms);
    CHECK(silence_timeout_for(heartbeat_interval_for(1, 0.05)) == 750ms);
}

TEST_CASE("a PONG carries a HEARTBEAT only to a version-6 session whose interval is not the route's") {
    CHECK(heartbeat_update(true, 5000ms, 6000ms) == 6000ms);
    CHECK(heartbeat_update(true, 10000ms, 5000ms) == 5000ms);  // sessions left: back down
    CHECK_FALSE(heartbeat_update(true, 6000ms, 6000ms));       // already there: a lone PONG
    CHECK_FALSE(heartbeat_update(false, 5000ms, 6000ms));      // version 5 keeps its WELCOME's interval
    CHECK_FALSE(heartbeat_update(false, 5000ms, 5000ms));
}
