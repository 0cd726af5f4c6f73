// N simulated tn-tun clients in one process (bench/tun/SCALE.md): each a lib/tun ClientCore with its
// own key and its own UDP socket (so its own source port), driven over plain UDP with epoll. No TUN
// device: the inner packets are ICMP echo requests built here, answered by the server host's kernel
// through the server's TUN, so every packet crosses the real server twice.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "base/epoll.hpp"
#include "base/unique_fd.hpp"
#include "tun/client_core.hpp"

namespace tn::bench {

struct SimPeer {
    tun::ClientCore core;
    UniqueFd fd;
    std::uint16_t ident = 0;  // ICMP echo identifier
    std::uint16_t seq = 0;
    std::uint64_t sent = 0, replies = 0, reply_bytes = 0, lost = 0;
    unsigned outstanding = 0;    // echoes sent and not answered (flood phase)
    // The flood's echoes in flight, oldest first (seq, sent): each one unanswered for lost_after is
    // lost on its own, so a drop frees its slot while the peer's other echoes are still answered.
    std::deque<std::pair<std::uint16_t, tun::TimePoint>> in_flight{};
    unsigned window = 0;         // the flood phase's share of the window; 0 outside it
};

// What one phase of traffic measured.
struct PhaseResult {
    double seconds = 0;
    std::uint64_t sent = 0, replies = 0, reply_bytes = 0, lost = 0, send_failed = 0;
    std::size_t peers_replied = 0;          // peers with at least one reply in the phase
    double rtt_p50_ms = 0, rtt_p99_ms = 0;  // of the replies in the phase
};

struct ConnectResult {
    double seconds = 0;  // first initiation to the last pushed config
    std::size_t connected = 0;
    std::uint64_t initiations = 0, cookies = 0;
    std::size_t aes = 0;  // connected peers whose session is AES-256-GCM (the server's choice)
};

class Swarm {
public:
    // One peer per private key; each binds its own socket (port chosen by the kernel) on one of
    // `addresses` consecutive IPv4 addresses from `bind_ip`, in turn: real clients come from many
    // hosts, and the server's per-source handshake limit under load is per address. With
    // `offer_aes`, every peer offers AES-256-GCM (PROTOCOL.tun.md revision 5), as a real client does
    // where its CPU has AES-NI.
    Swarm(const std::vector<tun::Key>& keys, const tun::Key& server_pub, const sockaddr_in& server,
          const std::string& bind_ip, unsigned addresses, std::size_t packet_size, bool offer_aes);
    std::size_t size() const { return peers_.size(); }

    // Until every peer has its pushed config, or `timeout` passes.
    ConnectResult connect(double timeout);
    // Each peer sends `rate` echoes a second (open loop, paced as one stream over all peers) for
    // `seconds`; with `until_replied`, ends as soon as every peer had a reply (`seconds` a limit).
    PhaseResult steady(double rate, double seconds, bool until_replied);
    // `window` echoes in flight in total, shared out over the peers (window / N each, the remainder
    // one more for the first peers; at least one each): as fast as the server answers. An echo
    // unanswered for `lost_after` counts as lost and frees its slot.
    PhaseResult flood(unsigned window, double seconds);

private:
    // Waits up to `timeout_ms` for datagrams and handles them; runs the peers' timers now and then.
    void pump(int timeout_ms);
    void receive(SimPeer& p, tun::TimePoint now);
    void on_reply(SimPeer& p, const std::uint8_t* pkt, std::size_t len, tun::TimePoint now);
    void run_timers(tun::TimePoint now, bool force);
    bool send_echo(SimPeer& p, tun::TimePoint now);
    void send_dgram(SimPeer& p, tun::Bytes d);
    void start_phase();
    PhaseResult end_phase(double seconds);

    sockaddr_in server_{};
    std::size_t packet_size_;
    std::vector<SimPeer> peers_;
    std::vector<std::int32_t> by_fd_;  // fd -> index in peers_, -1 for none
    Epoll ep_;
    tun::TimePoint timers_at_{};
    bool counting_ = false;
    std::vector<double> rtts_us_;
    std::uint64_t send_failed_ = 0;
    std::vector<std::uint64_t> mark_sent_, mark_replies_, mark_bytes_, mark_lost_;
    std::vector<std::uint8_t> buf_, scratch_;
};

}  // namespace tn::bench
