// The simulated vnets of tn-route-agents (bench/relay/SCALE.md): what all of them share (the route's
// address, the token, the source addresses, counters) and one vnet's control session, built on
// lib/relay's own wire, messages, proofs and streams as tools/tn-vnet/vnet_agent.cpp is.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/backoff.hpp"
#include "relay/auth.hpp"
#include "relay/io_stream.hpp"
#include "relay/messages.hpp"

namespace tn::bench {

namespace asio = relay::asio;
using relay::tcp;
using Clock = std::chrono::steady_clock;

struct Counters {
    std::uint64_t connected = 0;    // control sessions welcomed now
    std::uint64_t registered = 0;   // vnets whose serve the route accepted now
    std::uint64_t attempts = 0;     // control connections tried (first ones and reconnects)
    std::uint64_t failures = 0;     // control attempts that failed before WELCOME, and sessions lost
    std::uint64_t refused = 0;      // serve registrations refused
    std::uint64_t heartbeats = 0;   // PINGs sent
    std::uint64_t heartbeat_moves = 0;  // HEARTBEAT frames received (the route moved a vnet's interval)
    std::uint64_t links_ok = 0;     // links bound (LINK_OK on a LINK_ACCEPT)
    std::uint64_t links_failed = 0;
    std::uint64_t clients = 0;      // remote_port clients connected
    std::uint64_t clients_failed = 0;
    std::uint64_t clients_closed = 0;  // connected, then closed by the route (refused, or the route died)
    std::vector<std::uint32_t> slots;  // control attempts per 100 ms since start (the reconnect shape)
};

struct Swarm {
    Swarm(asio::io_context& i, tcp::endpoint r) : io(i), route(r) {}
    asio::io_context& io;
    tcp::endpoint route;
    std::optional<asio::ssl::context> tls;  // set: the control connections run TLS, pinned to `fingerprint`
    std::string fingerprint, token;
    std::vector<asio::ip::address_v4> sources;  // 127.0.0.x: one is good for ~28,000 ephemeral ports
    Clock::time_point start = Clock::now();
    Counters n;
    // Every link and client the generator holds (idle proxied connections): kept open until exit.
    std::vector<relay::StreamPtr> held;
    std::vector<std::shared_ptr<tcp::socket>> clients;
    // A socket bound to source `i` (mod the count); the port is left to connect (IP_BIND_ADDRESS_NO_PORT).
    tcp::socket socket_from(std::size_t i);
    void count_attempt();
};

// One simulated vnet: its own control connection (TLS with the pinned fingerprint, hello, CHALLENGE,
// AUTH, WELCOME), one serve (with a remote_port when `remote_port` is set), PINGs at the route's
// interval (WELCOME's, then each HEARTBEAT's), PONGs to the route's PINGs, LINK_ACCEPT on a new link
// connection for every LINK_REQUEST (the link is held idle), and reconnects with tn-vnet's own policy,
// relay::reconnect_backoff().
class SimVnet : public std::enable_shared_from_this<SimVnet> {
public:
    SimVnet(Swarm& sw, std::size_t index, std::string group, std::uint16_t remote_port);
    void start() { connect(); }
    bool registered() const { return registered_; }

private:
    void connect();
    void handshake(relay::StreamPtr s);
    void authenticate(relay::StreamPtr s, const relay::Nonce& nr);
    void welcomed(relay::StreamPtr s, const relay::Nonce& nr, const relay::Nonce& nv, relay::Frame f);
    void read_loop(relay::StreamPtr s);
    void on_frame(const relay::Frame& f);
    void heartbeat(relay::StreamPtr s);
    void arm_heartbeat(relay::StreamPtr s);  // the next heartbeat(s) in heartbeat_ms_
    void lost(const relay::StreamPtr& s);
    void retry();
    void open_link(std::uint64_t link_id);
    relay::Binding binding(const relay::StreamPtr& s) const;

    Swarm& sw_;
    std::size_t index_;
    std::string group_, name_;
    std::uint16_t remote_port_;
    std::uint64_t instance_;
    relay::StreamPtr ctl_;
    std::shared_ptr<relay::FrameWriter> w_;
    asio::steady_timer hb_, retry_;
    Backoff backoff_{relay::reconnect_backoff()};
    std::uint32_t vnet_id_ = 0, heartbeat_ms_ = 5000;
    relay::Ticket ticket_{};
    bool connected_ = false, registered_ = false;
};

}  // namespace tn::bench
