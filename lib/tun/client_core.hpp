// The tn-tun client state machine without I/O (doc/PROTOCOL.tun.md §6): when to (re)handshake,
// keepalives, liveness, the pushed config. The runner feeds it datagrams, TUN packets and `now`.
#pragma once

#include <chrono>
#include <memory>
#include <optional>

#include "tun/cookie.hpp"
#include "tun/handshake.hpp"
#include "tun/session.hpp"
#include "tun/wire.hpp"

namespace tn::tun {

struct ClientSettings {
    KeyPair key;
    Key server_public{};
    seconds keepalive{0};  // persistent_keepalive; 0 = off
    SecretKey psk{};  // the pre-shared key this client shares with the server; all zeros: none (wiped with it)
    // Revision 5: offer AES-256-GCM in initiations (`cipher`, resolved by the config); the server chooses.
    bool offer_aes = false;
};

struct ClientStats {
    std::uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
    std::uint64_t handshakes_sent = 0, handshakes_done = 0, dropped = 0, cookies = 0;
};

struct ClientActions {
    Bytes to_tun;     // inside the caller's buffer
    Bytes send;       // to the server, inside the caller's buffer or scratch
    bool pushed = false;       // a (new) pushed config arrived: see push()
    bool established = false;  // a handshake completed
    bool cookie = false;       // the server is under load: the next initiation carries mac2
};

class ClientCore {
public:
    explicit ClientCore(ClientSettings s);

    ClientActions on_datagram(std::uint8_t* buf, std::size_t len, TimePoint now, std::uint8_t* scratch);
    // The packet is at buf + transport_header_len; buf has room for the tag.
    ClientActions on_tun(std::uint8_t* buf, std::size_t len, TimePoint now);
    // Timers: a handshake to (re)send or a keepalive, written to `scratch`. `wall` stamps initiations.
    ClientActions tick(TimePoint now, std::chrono::system_clock::time_point wall, std::uint8_t* scratch);
    // When tick() next has something to do (in the past when it is due now; never nullopt: a client
    // always has a handshake, a rekey or a liveness check ahead). The same pair as the other cores.
    std::optional<TimePoint> next_deadline() const;

    // A reload (SIGHUP) may change the keepalive interval; everything else needs a new core.
    void set_keepalive(seconds k) { s_.keepalive = k; }

    const std::optional<PushConfig>& push() const { return push_; }
    bool connected() const { return current_ != nullptr && push_.has_value(); }
    // Handshakes sent since the last success: the runner re-resolves the server's name after a few.
    unsigned failed_attempts() const { return attempts_ > 0 ? attempts_ - 1 : 0; }
    const ClientStats& stats() const { return stats_; }
    // For tests: the keypair in use.
    Keypair* current() { return current_.get(); }
    const Keypair* current_keypair() const { return current_.get(); }  // status: its suite
    // How long without an authenticated packet before the server is presumed gone (restarted).
    seconds dead_after() const;

private:
    ClientActions on_response(Bytes msg, TimePoint now, std::uint8_t* scratch);
    ClientActions on_cookie(Bytes msg, std::uint32_t receiver, TimePoint now);
    bool handshake_due(TimePoint now) const;
    // Whether an inner packet is one the tunnel carries: IPv4, or IPv6 once an IPv6 address was pushed.
    bool carries(Bytes pkt) const;
    ClientSettings s_;
    std::optional<InitiatorState> pending_;
    TimePoint pending_sent_{};
    unsigned attempts_ = 0;
    std::unique_ptr<Keypair> current_, previous_;
    std::optional<PushConfig> push_;
    Mac sent_mac1_{};               // of the initiation in flight: a cookie reply is bound to it
    std::optional<Cookie> cookie_;  // from the server's last cookie reply
    TimePoint cookie_at_{};
    TimePoint last_rx_{}, last_tx_{}, established_at_{};
    ClientStats stats_;
};

}  // namespace tn::tun
