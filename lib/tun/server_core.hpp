// The tn-tun server state machine without I/O (doc/PROTOCOL.tun.md §6-7): peers, handshakes,
// sessions, routing by inner address, roaming, rejection accounting. The runner feeds it datagrams,
// TUN packets and `now`, and carries out what it returns.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "tun/cookie.hpp"
#include "tun/handshake.hpp"
#include "tun/pool.hpp"
#include "tun/session.hpp"

namespace tn::tun {

// A UDP address as the socket layer reports it (IPv4 or IPv6).
struct Endpoint {
    sockaddr_storage sa{};
    socklen_t len = 0;
    bool operator==(const Endpoint& o) const { return len == o.len && std::memcmp(&sa, &o.sa, len) == 0; }
    std::string str() const;
};

struct PeerConfig {
    std::string name;
    Key public_key{};
    std::optional<std::uint32_t> address;  // static, else from the pool
    // Site-to-site: subnets behind this peer. The server routes them to it, pushes them to the other
    // peers, and accepts them as source addresses from this peer only.
    std::vector<Route> routes;
    std::vector<Route6> routes6;  // the same for IPv6 (needs subnet6)
    // What this peer is pushed instead of the server's own settings.
    std::optional<std::vector<Route>> push_routes;
    std::optional<std::vector<std::uint32_t>> dns;
    // The IPv6 entries of the same two lists: set together with push_routes / dns (a peer's list
    // replaces both families of the server's).
    std::vector<Route6> push_routes6;
    std::vector<Ip6> dns6;
    std::optional<std::uint16_t> mtu;
    // Optional pre-shared key (all zeros: none), mixed into the handshake as WireGuard's
    // PresharedKey: recorded sessions stay secret even if X25519 falls one day.
    SecretKey psk{};
};

struct ServerSettings {
    KeyPair key;
    Route subnet;
    std::uint16_t mtu = 1420;
    std::vector<std::uint32_t> dns;
    std::vector<Route> routes;
    // IPv6 inside the tunnel: the subnet (each peer's IPv6 address twins its IPv4 one, §7) and what
    // is pushed with it. Without subnet6 no IPv6 packet is carried and pushes stay version 1.
    std::optional<Route6> subnet6;
    std::vector<Ip6> dns6;
    std::vector<Route6> routes6;
    std::vector<PeerConfig> peers;
    double handshakes_per_second = 100;  // the DH work a flood can make us do
    double handshake_burst = 50;
    // Under load (less than half the burst left) an initiation needs a valid mac2 (a cookie reply
    // first) and passes this per-source limit instead of the global one.
    double source_handshakes_per_second = 5;
    double source_burst = 5;
    // A ceiling every Diffie-Hellman run passes, on both paths: however many addresses a flood can
    // receive at, the DH work per second stays bounded.
    double max_handshakes_per_second = 200;
    double max_handshake_burst = 100;
    // Once under load, stay so this long after the last sign of it (WireGuard does the same): else a
    // flood with pauses flips the state at every refill, and a pause decides who skips the cookie.
    std::chrono::milliseconds under_load_linger{1000};
    // Revision 5: answer an initiator that offers AES-256-GCM with it (`cipher`, resolved by the
    // config: "auto" sets it where this CPU has AES-NI). Others get ChaCha20-Poly1305.
    bool aes = false;
};

struct PeerStats {
    std::uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
    std::uint64_t keepalives_rx = 0, handshakes = 0;
};

struct Peer {
    PeerConfig config;
    std::uint32_t address = 0;  // 0 until allocated
    Ip6 address6{};             // its twin in subnet6, all zero without one
    std::optional<Endpoint> endpoint;
    std::unique_ptr<Keypair> current, previous, next;  // next: answered but not yet confirmed
    Timestamp last_timestamp{};
    std::optional<std::chrono::system_clock::time_point> last_handshake;
    PeerStats stats;
};

struct ServerStats {
    std::uint64_t rejected_handshakes = 0, dropped_malformed = 0, dropped_unknown_index = 0, dropped_replay = 0,
                  dropped_auth = 0, dropped_expired = 0, dropped_no_route = 0, dropped_spoofed = 0;
};

struct Rejection {
    Endpoint source;
    std::chrono::system_clock::time_point when;
    const char* reason = "";
};

// What to do after one input. Both may be set (a packet for the TUN plus the pushed config).
struct Actions {
    Bytes to_tun;            // a decrypted IP packet, inside the caller's buffer
    Bytes send;              // a datagram to send, inside the caller's scratch buffer
    Endpoint send_to;
    const Rejection* rejected = nullptr;  // set when a handshake was refused (for the log)
    const Peer* established = nullptr;    // set when a peer completed a handshake
    const Peer* answered = nullptr;       // set when a peer's initiation was accepted (its timestamp moved)
};

// What a reload changed (SIGHUP).
struct ReloadResult {
    std::size_t kept = 0, added = 0, removed = 0, readdressed = 0, rekeyed = 0;  // rekeyed: a new pre-shared key
    std::vector<std::string> need_restart;  // settings that differ but only apply at start
};

class ServerCore {
public:
    // Throws tn::ParseError on an inconsistent config (static address outside the subnet, duplicates).
    explicit ServerCore(ServerSettings s);

    // Handles one datagram in `buf` (len bytes, decrypted in place). `scratch` must hold
    // max_datagram_len bytes and receives any datagram to send.
    Actions on_datagram(std::uint8_t* buf, std::size_t len, const Endpoint& from, TimePoint now,
                        std::chrono::system_clock::time_point wall, std::uint8_t* scratch);
    // Handles one packet read from the TUN at buf + transport_header_len (`len` bytes); buf must have
    // room for len + transport_header_len + tag_len. Encrypts it in place for the peer it is routed to.
    Actions on_tun(std::uint8_t* buf, std::size_t len, TimePoint now);
    // Applies a changed config: unchanged peers keep sessions, counters and addresses; removed peers
    // and peers with another static address lose their sessions (the latter handshake again and get
    // the new address); a pooled peer whose address a new static one claims handshakes again too.
    // New DNS servers and routes go out with the next push (every rekey). Throws tn::ParseError and
    // changes nothing when the peer list is inconsistent.
    ReloadResult reload(const ServerSettings& s);
    // The greatest accepted handshake timestamp of each peer that has one, for the runner to keep
    // across restarts (a captured initiation replayed after a restart is then still refused);
    // restore_timestamps() takes them back, keeping the greater where a peer has one already.
    std::vector<std::pair<Key, Timestamp>> timestamps() const;
    void restore_timestamps(const std::vector<std::pair<Key, Timestamp>>& ts);
    // Drops expired keypairs. O(1) until the earliest expiry is due: the runner calls it on every
    // wakeup, and a scan of every peer there cost the data path per packet batch (bench/tun/SCALE.md).
    void tick(TimePoint now);
    // When tick() next has something to do (the next keypair to expire); nullopt when nothing is
    // scheduled. The same pair as the other cores (supervise, relay pairing, tn-forward's link).
    // Never later than the true next expiry; earlier (a wakeup with nothing to do) only after a
    // keypair went before its time (replaced by a newer handshake, or its peer removed).
    std::optional<TimePoint> next_deadline() const { return next_expiry_; }

    const std::vector<std::unique_ptr<Peer>>& peers() const { return peers_; }
    const ServerStats& stats() const { return stats_; }
    // The last rejections, oldest first (a bounded ring: a flood costs no memory).
    std::vector<Rejection> recent_rejections() const;
    const Pool& pool() const { return pool_; }
    std::uint32_t server_address() const { return pool_.server_address(); }
    // The server's IPv6 address in subnet6 (nullopt without subnet6).
    std::optional<Ip6> server_address6() const;

    static constexpr std::size_t rejection_ring = 16;
    // Per-source buckets tracked at most; when all are in use, new sources are refused (never reset:
    // a reset would hand every tracked flooder a fresh burst).
    static constexpr std::size_t max_sources = 4096;

private:
    struct Slot {
        Peer* peer;
        Keypair* kp;
    };
    Actions handle_initiation(std::uint8_t* buf, std::size_t len, const Endpoint& from, TimePoint now,
                              std::chrono::system_clock::time_point wall, std::uint8_t* scratch);
    Actions handle_transport(std::uint8_t* buf, std::size_t len, const Classified& c, const Endpoint& from,
                             TimePoint now, std::uint8_t* scratch);
    const Rejection* reject(const Endpoint& from, std::chrono::system_clock::time_point wall, const char* reason);
    std::uint32_t new_index();
    // Ends a peer's sessions and gives its address back (it stays listed unless erased).
    void forget_sessions(Peer& p);
    void add_peer(const PeerConfig& pc);
    void retire(std::unique_ptr<Keypair>& kp);
    struct Bucket {
        double tokens = 0;
        TimePoint at{};
    };
    static void refill(Bucket& b, double rate, double burst, TimePoint now);
    static bool take(Bucket& b, double rate, double burst, TimePoint now);
    bool under_load(TimePoint now);
    // Whether a cookie-verified source may run a handshake now (its own bucket; refused when the
    // table is full of sources that are still limited).
    bool source_allows(const CookieSource& src, TimePoint now);
    // The peer a packet for `dst` goes to: its tunnel address, else the most specific site route.
    Peer* route(std::uint32_t dst) const;
    Peer* route6(const Ip6& dst) const;  // its tunnel address, else the most specific IPv6 site route
    // Gives `p` its pooled or static address and, with subnet6, its IPv6 twin.
    void set_address(Peer& p, std::uint32_t a);
    // A decrypted packet from `p` (not IPv4): IPv6 from its own address goes to its destination.
    Actions route_inner6(Peer& p, Bytes plain, std::uint8_t* buf, Actions a, TimePoint now);
    bool speaks_for(const Peer& p, std::uint32_t src) const;
    PushConfig push_for(const Peer& p) const;
    // Checks the site routes (no overlaps, inside no tunnel subnet, at most max_push_routes pushed)
    // and rebuilds the table. Throws tn::ParseError.
    static void check_site_routes(const ServerSettings& s);
    void index_site_routes();
    // Encrypts the plaintext at scratch + header for `p`; empty when it has no usable session.
    Bytes seal_for(Peer& p, MsgType t, std::uint8_t* scratch, std::size_t plain_len, TimePoint now);

    ServerSettings settings_;
    Pool pool_;
    std::vector<std::unique_ptr<Peer>> peers_;
    std::map<Key, Peer*> by_key_;  // looked up per handshake only, never per packet
    std::unordered_map<std::uint32_t, Slot> by_index_;
    std::unordered_map<std::uint32_t, Peer*> by_address_;
    std::map<Ip6, Peer*> by_address6_;  // empty without subnet6
    std::vector<std::pair<Route, Peer*>> site_routes_;  // most specific first; usually empty
    std::vector<std::pair<Route6, Peer*>> site_routes6_;
    ServerStats stats_;
    std::array<Rejection, rejection_ring> rejections_{};
    std::size_t rejection_next_ = 0;
    Bucket global_, ceiling_;
    TimePoint swept_at_{};
    std::optional<TimePoint> next_expiry_;  // no keypair expires before it; nullopt: no keypair
    TimePoint under_load_until_{};
    CookieJar cookies_;
    std::unordered_map<std::string, Bucket> by_source_;  // cookie-verified senders (IPv6: by /64), capped
};

}  // namespace tn::tun
