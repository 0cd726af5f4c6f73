// The heartbeat interval tn-route gives a vnet in WELCOME (doc/PROTOCOL.relay.md §5, doc/SCALING.md):
// a pure core, no clock or I/O. Each PING costs the route a read, a decrypt, a PONG and an encrypt
// (about 44 us of CPU), so the interval grows with the sessions the route holds and the total stays
// near 1,000 pings per second, as Nomad stretches its heartbeat TTL with the node count.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>

namespace tn::route {

inline constexpr std::size_t kHeartbeatsPerSecond = 1000;  // the rate the interval aims at
inline constexpr std::chrono::milliseconds kMinHeartbeat{5000};
// The cap keeps deployed version-5 vnets working: they declare a route lost after 15 s without a
// frame, and a PONG every 10 s stays inside that.
inline constexpr std::chrono::milliseconds kMaxHeartbeat{10000};
inline constexpr std::chrono::milliseconds kMinScaledHeartbeat{50};  // a time scale never makes it busier

// clamp(live_sessions / 1,000 per second, 5 s, 10 s), times the time scale (TN_RELAY_TIME_SCALE),
// never under 50 ms. `live_sessions` counts the session being welcomed.
inline std::chrono::milliseconds heartbeat_interval_for(std::size_t live_sessions, double time_scale) {
    auto rate_bound = std::chrono::milliseconds(live_sessions * 1000 / kHeartbeatsPerSecond);
    auto interval = std::clamp<std::chrono::milliseconds>(rate_bound, kMinHeartbeat, kMaxHeartbeat);
    auto scaled = std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(interval.count() * time_scale));
    return std::max(kMinScaledHeartbeat, scaled);
}

// A session that sent nothing for this long is dropped: three intervals, so two lost PINGs are
// forgiven and a silent link is noticed after the third.
inline constexpr std::chrono::milliseconds silence_timeout_for(std::chrono::milliseconds interval) {
    return 3 * interval;
}

}  // namespace tn::route
