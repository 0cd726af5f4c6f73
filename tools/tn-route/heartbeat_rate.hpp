// The heartbeat interval tn-route gives its vnets (doc/PROTOCOL.relay.md §5, doc/SCALING.md): a pure
// core, no clock or I/O. Each PING costs the route a read, a decrypt, a PONG and an encrypt (about
// 45 us of CPU), so the interval grows with the sessions the route holds and the total stays near
// 1,000 pings per second, as Nomad stretches its heartbeat TTL with the node count. A vnet gets the
// interval in WELCOME and, from version 6 on, a HEARTBEAT frame when the route's interval moved.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <optional>

namespace tn::route {

inline constexpr std::size_t kHeartbeatsPerSecond = 1000;  // the rate the interval aims at
inline constexpr std::chrono::milliseconds kMinHeartbeat{5000};
// The cap keeps version-5 vnets working: they declare a route lost after 15 s without a frame, and a
// PONG every 10 s stays inside that.
inline constexpr std::chrono::milliseconds kMaxHeartbeat{10000};
inline constexpr std::chrono::milliseconds kMinScaledHeartbeat{50};  // a time scale never makes it busier

// clamp(live_sessions / 1,000 per second, rounded up to whole seconds, 5 s, 10 s), times the time
// scale (TN_RELAY_TIME_SCALE), never under 50 ms. `live_sessions` counts the session being welcomed.
// Whole seconds, so that the interval moves once per 1,000 sessions that come or go, not with each:
// every move costs each connected version-6 vnet a HEARTBEAT frame.
inline std::chrono::milliseconds heartbeat_interval_for(std::size_t live_sessions, double time_scale) {
    auto seconds = (live_sessions + kHeartbeatsPerSecond - 1) / kHeartbeatsPerSecond;
    auto rate_bound = std::chrono::milliseconds(seconds * 1000);
    auto interval = std::clamp<std::chrono::milliseconds>(rate_bound, kMinHeartbeat, kMaxHeartbeat);
    auto scaled = std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(interval.count() * time_scale));
    return std::max(kMinScaledHeartbeat, scaled);
}

// A session that sent nothing for this long is dropped: three intervals, so two lost PINGs are
// forgiven and a silent link is noticed after the third.
inline constexpr std::chrono::milliseconds silence_timeout_for(std::chrono::milliseconds interval) {
    return 3 * interval;
}

// Answering a PING of a session that was last given `given`, while the route's interval is `current`:
// the interval to send in a HEARTBEAT behind the PONG, or nullopt (the same interval, or a session
// without `takes_updates`: a version-5 vnet, which keeps its WELCOME's interval).
inline std::optional<std::chrono::milliseconds> heartbeat_update(bool takes_updates, std::chrono::milliseconds given,
                                                                 std::chrono::milliseconds current) {
    if (!takes_updates || given == current) return std::nullopt;
    return current;
}

}  // namespace tn::route
