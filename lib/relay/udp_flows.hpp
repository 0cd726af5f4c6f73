// UdpFlowTable: a UDP use's flows as a pure core (events and `now` in, verdicts, expired flows and
// the next deadline out). Each source address of the use's socket is one flow, carried on its own
// link; a flow ends when it was idle (no datagram either way) for `idle`, or when its link closed.
// At `max_flows` a datagram from a new source is dropped and counted: the flows already open go on.
#pragma once

#include <array>
#include <chrono>
#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace tn::relay {

// A datagram's source: the address (IPv4 as v4-mapped IPv6) and port.
struct UdpPeer {
    std::array<std::uint8_t, 16> ip{};
    std::uint16_t port = 0;
    auto operator<=>(const UdpPeer&) const = default;
};

class UdpFlowTable {
public:
    using Clock = std::chrono::steady_clock;
    UdpFlowTable(Clock::duration idle, std::size_t max_flows) : idle_(idle), max_(max_flows) {}

    enum class Verdict { forward, open, drop };
    struct Route {
        Verdict verdict;
        std::uint64_t flow = 0;  // forward/open: the flow (open: new, the caller opens its link)
    };
    // A datagram from `from` arrived.
    Route on_datagram(const UdpPeer& from, Clock::time_point now);
    // A datagram of `flow` went back to its source: it is not idle.
    void on_reply(std::uint64_t flow, Clock::time_point now);
    // The flow's link closed (or could not open): the flow is forgotten; the next datagram from its
    // source opens a new one.
    void on_closed(std::uint64_t flow);
    // Time passing: flows idle for `idle` or longer, removed from the table; the caller closes their links.
    std::vector<std::uint64_t> tick(Clock::time_point now);
    // When the next flow would expire if nothing moves; none without flows.
    std::optional<Clock::time_point> next_deadline() const;
    std::optional<UdpPeer> peer(std::uint64_t flow) const;

    std::size_t open() const { return flows_.size(); }
    std::uint64_t opened_total() const { return opened_; }
    std::uint64_t dropped() const { return dropped_; }  // datagrams from new sources refused at the cap
    std::uint64_t expired_total() const { return expired_; }
    std::size_t max_flows() const { return max_; }

private:
    struct Flow {
        UdpPeer peer;
        Clock::time_point last;
    };
    Clock::duration idle_;
    std::size_t max_;
    std::map<std::uint64_t, Flow> flows_;
    std::map<UdpPeer, std::uint64_t> by_peer_;
    std::uint64_t next_id_ = 1, opened_ = 0, dropped_ = 0, expired_ = 0;
};

}  // namespace tn::relay
