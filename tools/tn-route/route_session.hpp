// One authenticated vnet's control session inside tn-route (private to the route's runtime).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <set>

#include "route_server.hpp"

namespace tn::route {

using relay::Frame;
using relay::FrameWriter;
using relay::StreamPtr;
using relay::Ticket;

inline constexpr std::size_t kMaxQueued = 4 << 20;  // a vnet that stops reading its control stream is dropped

// Sends an ERROR frame, then closes once it is written (route_server.cpp).
void refuse(const StreamPtr& s, relay::ErrorCode c, const std::string& m);

// A duration in whole seconds, as status and the dashboard show ages and uptimes.
inline long long secs(Clock::duration d) { return std::chrono::duration_cast<std::chrono::seconds>(d).count(); }

// Connections between accept and their first frame, under the gate's caps. A Setup lives as long as
// some handler of its connection holds it: when the first frame is in (or the connection closed)
// the last one lets go and its slot frees itself.
struct SetupTable {
    explicit SetupTable(relay::SetupCaps caps) : gate(caps) {}
    relay::SetupGate gate;
    std::map<std::uint64_t, std::weak_ptr<Setup>> live;
    std::uint64_t evicted = 0, refused = 0;
    std::function<void()> on_release;  // optional: a slot freed (the vnet listener may accept again)
    void release(std::uint64_t id) {
        gate.done(id);
        live.erase(id);
        if (on_release) on_release();
    }
    void evict(std::uint64_t id);
};

// Arms `st`'s deadline for a client still sending its first bytes (an HTTP head, a TLS ClientHello):
// when it fires, the pending read is cancelled and st->timed_out tells it why.
template <class State>
void arm_first_bytes_deadline(const std::shared_ptr<State>& st, const StreamPtr& s, Clock::duration d) {
    st->timer.expires_after(d);
    st->timer.async_wait([s, st](relay::error_code ec) {
        if (ec) return;
        st->timed_out = true;
        relay::error_code e2;
        s->socket().cancel(e2);
    });
}

struct Setup {
    Setup(relay::asio::io_context& io, std::weak_ptr<SetupTable> t, std::uint64_t slot) : table(std::move(t)), id(slot), timer(io) {}
    ~Setup() {
        timer.cancel();
        if (auto t = table.lock()) t->release(id);
    }
    std::weak_ptr<SetupTable> table;
    std::uint64_t id;
    steady_timer timer;           // the setup deadline: closes the connection
    std::function<void()> close;  // closes the connection (weakly: it never keeps it alive)
};

inline void SetupTable::evict(std::uint64_t id) {
    auto it = live.find(id);
    if (it == live.end()) return gate.done(id);
    auto s = it->second.lock();
    release(id);
    ++evicted;
    if (s && s->close) s->close();
}

struct Session : std::enable_shared_from_this<Session> {
    explicit Session(log::Context l) : log(std::move(l)) {}
    log::Context log;  // peer, vnet (its name) and group on each of its lines
    StreamPtr s;
    std::shared_ptr<FrameWriter> w;
    std::uint32_t vnet_id = 0;
    std::string group, name, peer;
    Ticket ticket{};
    Clock::time_point last_rx = Clock::now(), since = Clock::now();
    std::chrono::milliseconds heartbeat{};  // the interval last given, in WELCOME or HEARTBEAT
    Clock::duration silence_timeout{};      // 3 x that interval (heartbeat_rate.hpp)
    bool takes_heartbeats = false;          // version 6: HEARTBEAT moves it to the route's interval
    bool closed = false;
    void send(const Frame& f) {
        if (!closed) w->send(f);
    }
};

}  // namespace tn::route
