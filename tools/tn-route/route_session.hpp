// One authenticated vnet's control session inside tn-route (private to the route's runtime).
#pragma once

#include "route_server.hpp"

namespace tn::route {

using relay::Frame;
using relay::FrameWriter;
using relay::StreamPtr;
using relay::Ticket;

inline constexpr std::size_t kMaxQueued = 4 << 20;  // a vnet that stops reading its control stream is dropped

struct Session : std::enable_shared_from_this<Session> {
    StreamPtr s;
    std::shared_ptr<FrameWriter> w;
    std::uint32_t vnet_id = 0;
    std::string group, name, peer;
    Ticket ticket{};
    Clock::time_point last_rx = Clock::now(), since = Clock::now();
    bool closed = false;
    void send(const Frame& f) {
        if (!closed) w->send(f);
    }
};

}  // namespace tn::route
