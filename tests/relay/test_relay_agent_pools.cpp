// AgentPools, a vnet's pre-opened link pools as a pure core: how many to open, what a finished link
// does, and how a new control session (generation) drops the old links and refuses their returns.
#include <catch2/catch.hpp>

#include "relay/agent_pools_core.hpp"

using namespace tn::relay;

TEST_CASE("pools fill to the target only while something wants them, counting attempts in flight") {
    AgentPools<int> p(4);
    CHECK(p.to_open(PoolKind::parked, false) == 0);  // no use listens: nothing to open
    REQUIRE(p.to_open(PoolKind::parked, true) == 4);
    for (int i = 0; i < 3; ++i) p.start_open(PoolKind::parked);
    CHECK(p.to_open(PoolKind::parked, true) == 1);  // three in flight
    CHECK(p.opened(PoolKind::parked, p.generation(), 10));
    p.open_failed(PoolKind::parked);  // the next use of the pool refills it
    CHECK(p.idle(PoolKind::parked) == 1);
    CHECK(p.opening(PoolKind::parked) == 1);
    CHECK(p.to_open(PoolKind::parked, true) == 2);
    CHECK(p.to_open(PoolKind::standby, true) == 4);  // the kinds are apart
    AgentPools<int> off(0);
    CHECK(off.to_open(PoolKind::standby, true) == 0);  // link_pool = 0
    CHECK_FALSE(off.will_keep(PoolKind::standby, off.generation(), 5));
}

TEST_CASE("parked links leave oldest first; standby links leave by name") {
    AgentPools<int> p(3);
    auto g = p.generation();
    for (int i : {1, 2, 3}) {
        p.start_open(PoolKind::parked);
        p.opened(PoolKind::parked, g, i);
        p.start_open(PoolKind::standby);
        p.opened(PoolKind::standby, g, 10 + i);
    }
    CHECK(p.take_parked() == 1);
    CHECK(p.take_parked() == 2);
    CHECK(p.remove_standby(12));
    CHECK_FALSE(p.remove_standby(12));  // already gone
    CHECK(p.idle(PoolKind::standby) == 2);
    CHECK(p.take_parked() == 3);
    CHECK_FALSE(p.take_parked());
}

TEST_CASE("a finished link is kept up to twice the pool plus the busy ones, never over the idle cap") {
    AgentPools<int> p(2, 5);
    auto g = p.generation();
    CHECK(p.will_keep(PoolKind::parked, g, 0));
    for (int i = 0; i < 4; ++i) p.reuse(PoolKind::parked, g, i);
    CHECK_FALSE(p.will_keep(PoolKind::parked, g, 0));  // 4 idle = twice the pool
    CHECK(p.will_keep(PoolKind::parked, g, 3));         // under load: room for the busy ones
    p.reuse(PoolKind::parked, g, 4);
    CHECK_FALSE(p.will_keep(PoolKind::parked, g, 100));  // the idle cap
    CHECK(p.will_keep(PoolKind::standby, g, 0));         // the other kind has its own count
}

TEST_CASE("a new generation drops every pooled link and refuses the old one's returns") {
    AgentPools<int> p(2);
    auto old = p.generation();
    p.start_open(PoolKind::standby);
    p.reuse(PoolKind::parked, old, 1);
    p.reuse(PoolKind::standby, old, 2);
    auto dropped = p.drop();
    CHECK(dropped == std::vector<int>{1, 2});
    CHECK_FALSE(p.current(old));
    CHECK(p.idle(PoolKind::parked) + p.idle(PoolKind::standby) == 0);
    CHECK_FALSE(p.opened(PoolKind::standby, old, 3));  // the session it was opened for is over
    CHECK(p.opening(PoolKind::standby) == 0);
    CHECK_FALSE(p.reuse(PoolKind::parked, old, 4));
    CHECK_FALSE(p.will_keep(PoolKind::parked, old, 0));
    CHECK(p.reuse(PoolKind::parked, p.generation(), 5));
    p.set_target(0);
    CHECK(p.to_open(PoolKind::parked, true) == 0);
}
