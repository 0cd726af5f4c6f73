// The flow table of a UDP use (relay/udp_flows): one flow per source, the cap on flows (new sources
// dropped and counted, open flows untouched), idle expiry with its deadline, and links that close.
#include <catch2/catch.hpp>

#include "relay/udp_flows.hpp"

using namespace tn::relay;
using namespace std::chrono_literals;
using V = UdpFlowTable::Verdict;

namespace {
UdpPeer peer(std::uint16_t port, std::uint8_t last = 1) {
    UdpPeer p;
    p.ip[10] = p.ip[11] = 0xff;
    p.ip[12] = 127;
    p.ip[15] = last;
    p.port = port;
    return p;
}
const UdpFlowTable::Clock::time_point t0{};
}  // namespace

TEST_CASE("each source is one flow; its next datagrams go to the same flow") {
    UdpFlowTable t(60s, 4);
    auto a = t.on_datagram(peer(1000), t0);
    REQUIRE(a.verdict == V::open);
    auto b = t.on_datagram(peer(1001), t0);
    REQUIRE(b.verdict == V::open);
    CHECK(b.flow != a.flow);
    auto a2 = t.on_datagram(peer(1000), t0 + 1s);
    CHECK(a2.verdict == V::forward);
    CHECK(a2.flow == a.flow);
    CHECK(t.on_datagram(peer(1000, 2), t0).verdict == V::open);  // another address, same port
    CHECK(t.open() == 3);
    CHECK(t.peer(a.flow) == peer(1000));
}

TEST_CASE("at the cap new sources are dropped and counted; open flows go on") {
    UdpFlowTable t(60s, 2);
    auto a = t.on_datagram(peer(1), t0);
    t.on_datagram(peer(2), t0);
    for (std::uint16_t p = 3; p < 1003; ++p) CHECK(t.on_datagram(peer(p), t0).verdict == V::drop);
    CHECK(t.dropped() == 1000);
    CHECK(t.open() == 2);
    auto again = t.on_datagram(peer(1), t0 + 1s);
    CHECK(again.verdict == V::forward);
    CHECK(again.flow == a.flow);
    t.on_closed(a.flow);  // room again
    CHECK(t.on_datagram(peer(5000), t0).verdict == V::open);
    CHECK(t.opened_total() == 3);
}

TEST_CASE("a flow idle for the timeout expires; traffic either way keeps it") {
    UdpFlowTable t(10s, 8);
    CHECK_FALSE(t.next_deadline());
    auto a = t.on_datagram(peer(1), t0);
    auto b = t.on_datagram(peer(2), t0 + 2s);
    CHECK(t.next_deadline() == t0 + 10s);
    t.on_reply(a.flow, t0 + 5s);  // a reply counts as activity
    CHECK(t.next_deadline() == t0 + 12s);
    CHECK(t.tick(t0 + 11s).empty());
    auto gone = t.tick(t0 + 12s);
    REQUIRE(gone.size() == 1);
    CHECK(gone[0] == b.flow);
    CHECK(t.expired_total() == 1);
    CHECK(t.next_deadline() == t0 + 15s);
    CHECK(t.tick(t0 + 15s) == std::vector<std::uint64_t>{a.flow});
    CHECK(t.open() == 0);
    CHECK_FALSE(t.next_deadline());
    // The source comes back: a new flow.
    auto a2 = t.on_datagram(peer(1), t0 + 16s);
    CHECK(a2.verdict == V::open);
    CHECK(a2.flow != a.flow);
}

TEST_CASE("a closed flow is forgotten; a reply or close for an unknown flow is ignored") {
    UdpFlowTable t(10s, 8);
    auto a = t.on_datagram(peer(1), t0);
    t.on_closed(a.flow);
    t.on_closed(a.flow);
    t.on_reply(a.flow, t0 + 1s);
    CHECK(t.open() == 0);
    CHECK_FALSE(t.peer(a.flow));
    CHECK(t.tick(t0 + 1h).empty());
    CHECK(t.on_datagram(peer(1), t0).verdict == V::open);
}
