// VnetAgent: tn-vnet's runtime on one Asio event loop: the control session to the route (reconnected
// forever with capped backoff), serves, uses (standby until their id appears), links, unserve, ctl.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/control_line.hpp"
#include "base/log.hpp"
#include "relay/agent_pools_core.hpp"
#include "relay/auth.hpp"
#include "relay/io_pump.hpp"
#include "relay/registry.hpp"
#include "route_cursor.hpp"
#include "vnet_config.hpp"
#include "relay/io_udp_use.hpp"

namespace tn::vnet {

// The datagram side of UDP uses and serves lives in lib/relay (tn-route runs UDP remote_ports with it).
using relay::serve_udp_link;
using relay::udp;
using relay::udp_peer;
using relay::UdpLink;
using relay::UdpUse;
using relay::UdpUseLimits;

namespace asio = relay::asio;
using relay::tcp;
using Clock = std::chrono::steady_clock;

// Where a local serve stands with the route (ctl shows describe()): not started, waiting for the
// route session, SERVE sent, registered, or refused (`detail` says why).
enum class ServeState { inactive, waiting, registering, registered, refused };
// Where a use's local port stands: not started, waiting for its serve id, listening, or failed to
// listen (`detail` says why).
enum class UseState { inactive, standby, attached, error };
std::string describe(ServeState s, const std::string& detail);
std::string describe(UseState s, const std::string& detail);

struct LocalServe {
    ServeCfg cfg;
    bool registered = false;
    std::uint16_t id = 0;  // the id in force (assigned by the route)
    ServeState state = ServeState::inactive;
    std::string detail;  // refused: the route's reason
    bool unserve = false;
    std::uint32_t open_links = 0;
    void set(ServeState s, std::string why = {}) {
        state = s;
        detail = std::move(why);
    }
    std::string state_text() const { return describe(state, detail); }
};

struct LocalUse {
    UseCfg cfg;
    std::shared_ptr<tcp::acceptor> listener;
    std::shared_ptr<UdpUse> udp;  // type = "udp": its socket and flows, instead of `listener`
    UseState state = UseState::inactive;
    std::string detail;  // error: why it cannot listen
    std::uint16_t bound_port = 0;
    std::uint32_t open_links = 0;
    void set(UseState s, std::string why = {}) {
        state = s;
        detail = std::move(why);
    }
    std::string state_text() const { return describe(state, detail); }
    bool listening() const { return listener || udp; }
};

// What a ctl command returns: an exit code and the text (or JSON) to print.
using Reply = ControlReply;  // the control socket's reply (base/control_line.hpp)
using ReplyFn = std::function<void(Reply)>;

class VnetAgent {
public:
    VnetAgent(asio::io_context& io, VnetConfig cfg, const log::Logger& log, double time_scale);
    ~VnetAgent();
    void start();
    void stop();
    // 0 after a clean stop; 77/69/78 when the agent gave up (auth, version, config).
    int exit_code() const { return exit_code_; }
    // Runs one ctl/terminal command (argv words); the reply may come later (ping, show vnets, unserve).
    void command(const std::vector<std::string>& words, ReplyFn reply);
    void reload(const std::string& file, ReplyFn reply);

private:
    // reload: the current route's index in the new list `next` (none: it left the list; the session
    // moves), noting a changed list in `changes`.
    std::optional<std::size_t> route_in(const std::vector<HostPort>& next, std::vector<std::string>& changes) const;
    using OnStream = std::function<void(relay::error_code, relay::StreamPtr, std::string why)>;
    void connect();
    // An attempt on the current route failed before the route welcomed us: the next address of the
    // round at once (jittered), or, the round done, the capped backoff and a new round from the top.
    void schedule_reconnect(const std::string& why);
    // Where the next attempt goes after the session to the current route ended: the next address
    // (then round the others), or with one address the backoff. `from_top`: a new round in list order.
    void after_session(const std::string& why, bool from_top);
    void retry_after(Clock::duration d);
    // Links to the route, remembered (weakly) so that they end with its session: the route ends them
    // too when it drops a session, and one that went silent would leave their clients hanging.
    relay::StreamPtr track_link(relay::StreamPtr s);
    void cut_links();
    void backoff_wait(const std::string& why);
    const HostPort& current_route() const { return cfg_.routes[cursor_.current()]; }
    // A TCP connection to the route: TLS with the pinned fingerprint for the control connection,
    // plain for links.
    void open_route(OnStream done, bool control = false);
    // A link connection with hellos exchanged and the route's CHALLENGE read (into s->challenge), so
    // its first frame can carry a proof over it.
    void open_link_conn(OnStream done);
    void on_control(relay::StreamPtr s);
    void read_loop();
    void on_frame(relay::Frame f);
    void lost(const std::string& why);
    void fatal(int code, const std::string& why);
    void heartbeat();
    void arm_heartbeat();  // the next heartbeat() in heartbeat_ms_
    void moved_heartbeat(std::uint32_t ms);  // HEARTBEAT: the route's new interval, from now on
    void register_serve(LocalServe& s);
    void unregister_serve(LocalServe& s);
    void attach_uses();
    void attach(LocalUse& u);
    void detach(LocalUse& u, UseState state);
    void accept_use(std::shared_ptr<tcp::acceptor> acc, std::string use_name);
    void open_link(tcp::socket local, std::uint16_t id, std::string use_name);
    // Binds a local connection of a use to link `s` (challenge read) with LINK_OPEN, its first bytes
    // right behind it; the route's answer (LINK_OPENED or ERROR) comes before any byte of the peer.
    void use_link(relay::StreamPtr lp, relay::StreamPtr s, std::uint16_t id, std::string use_name);
    // LINK_OPEN for serve `id` on link `s` (its proof, and with tls = true the link key we drew,
    // boxed for the route), and the use side's seal for that key.
    std::pair<relay::Bytes, std::unique_ptr<relay::LinkSeal>> link_open_frame(const relay::StreamPtr& s, std::uint16_t id);
    // UDP uses and serves (vnet_udp_agent.cpp): the use's socket; a new flow's link (LINK_OPEN, then
    // LINK_OPENED awaited before its first datagram goes); the serving end's connected socket.
    bool attach_udp(LocalUse& u, std::uint16_t port);
    void open_udp_flow(const std::string& use_name, std::uint64_t flow);
    void udp_flow_link(relay::StreamPtr s, const std::string& use_name, std::uint64_t flow);
    // Connects serve `id`'s local service and answers LINK_REQUEST `link_id`, on a new link, or on
    // `via` when the request came down a standby link.
    void serve_link(std::uint64_t link_id, std::uint16_t id, bool early, relay::StreamPtr via = nullptr);
    // serve_link's steps (vnet_links.cpp): the local connect, its outcome, taking the link (new or
    // `via`), binding it with LINK_ACCEPT and its verdict, and the pump once both sides are ready.
    struct ServeJoin;
    void connect_serve_local(std::shared_ptr<ServeJoin> j, const std::string& ip, std::uint16_t port);
    void serve_link_connected(std::shared_ptr<ServeJoin> j, relay::error_code ec);
    void serve_link_up(std::shared_ptr<ServeJoin> j);
    void serve_link_bind(std::shared_ptr<ServeJoin> j, relay::StreamPtr s);
    void serve_link_start(std::shared_ptr<ServeJoin> j);
    // LINK_OK's verdict (and with e2e_secret the handshake's) taken: the pump may start, or the link ends.
    void serve_link_bound(std::shared_ptr<ServeJoin> j, relay::StreamPtr s, bool ok, const std::string& why,
                          std::unique_ptr<relay::LinkSeal> seal);
    // End-to-end links (vnet_e2e.cpp, PROTOCOL.relay.md §12): the handshake before any byte of the stream.
    void serve_link_e2e(std::shared_ptr<ServeJoin> j, relay::StreamPtr s, std::unique_ptr<relay::LinkSeal> outer);
    void use_link_e2e(relay::StreamPtr lp, relay::StreamPtr s, std::uint16_t id, std::string use_name);
    void udp_flow_link_e2e(relay::StreamPtr s, const std::string& use_name, std::uint64_t flow);
    void connect_serve_udp(std::shared_ptr<ServeJoin> j, const std::string& ip, std::uint16_t port);
    void start_udp_serve(std::shared_ptr<ServeJoin> j);
    // Answers LINK_REQUEST `link_id` with LINK_FAIL: to the route, or down `via` (then closed).
    void fail_link(std::uint64_t link_id, relay::StreamPtr via, const std::string& why);
    // The pools of pre-opened links (vnet_pool.cpp): parked ones for uses, standby ones for serves.
    void refill_pools();
    void open_pooled(bool standby);
    void standby_wait(relay::StreamPtr s, std::uint64_t gen);
    void drop_pools();
    static constexpr std::size_t kMaxIdleLinks = 32;  // reused links kept idle, of each kind
    // Asked when a link's EOF record goes out: do we keep the link afterwards (pool room)?
    bool will_keep(bool standby, std::uint64_t gen) const;
    std::function<bool()> keep_fn(bool standby);
    // After a clean end of a link we promised to keep: back into the pool.
    void reuse_link(relay::StreamPtr s, bool standby, std::uint64_t gen);
    void on_unserve_ask(const relay::UnserveAsk& m);
    void expire_unserves();
    void send(const relay::Frame& f);
    LocalServe* serve_by_name(const std::string& n);
    LocalServe* serve_by_id(std::uint16_t id);
    LocalUse* use_by_name(const std::string& n);
    bool active_at_start(bool active, bool start_flag) const;
    void start_ctl();
    void accept_ctl();
    void serve_ctl(std::shared_ptr<asio::local::stream_protocol::socket> s);
    std::string show(const std::string& what, bool json) const;
    // The ctl commands (vnet_ctl.cpp), one handler per command word; command() dispatches to them.
    struct CtlCall;
    void ctl_show(const CtlCall& c);
    void ctl_ping(const CtlCall& c);
    void ctl_unserve(const CtlCall& c);
    // unserve --local: maps the granted serve id on a local port (as use "unserve-ID"); says where.
    std::string map_unserved(std::uint16_t id, const std::string& local);
    void ctl_serve(const CtlCall& c);
    void ctl_serve_new(const CtlCall& c);
    void ctl_use(const CtlCall& c);
    void ctl_use_new(const CtlCall& c);
    void ctl_reload(const CtlCall& c);
    Clock::duration scaled(std::chrono::milliseconds d) const;
    // Lines about one serve or use carry its name (frp's xlog prefix), after the route session's.
    log::Context serve_log(const std::string& name) const { return route_log_.with("serve", name); }
    log::Context use_log(const std::string& name) const { return route_log_.with("use", name); }

    asio::io_context& io_;
    VnetConfig cfg_;
    const log::Logger& log_;
    log::Context route_log_;  // the route session: its address, and our vnet id once welcomed
    double scale_;
    std::uint64_t instance_ = relay::random_u64();
    std::optional<asio::ssl::context> tls_;
    std::vector<tcp::endpoint> route_eps_;  // current_route()'s addresses: the control session's and its links'
    std::vector<std::weak_ptr<relay::Stream>> route_links_;
    std::size_t prune_links_at_ = 64;
    RouteCursor cursor_{cfg_.routes.size()};  // which of cfg_.routes is in use or being tried
    bool restart_round_ = false;            // the session ends by reload: a new round from the top
    relay::StreamPtr ctl_;
    std::shared_ptr<relay::FrameWriter> writer_;
    bool connected_ = false, stopped_ = false;
    std::uint32_t vnet_id_ = 0, heartbeat_ms_ = 5000;
    relay::Ticket ticket_{};
    Clock::time_point last_rx_{}, connected_since_{};
    Backoff backoff_{relay::reconnect_backoff()};
    asio::steady_timer retry_timer_, hb_timer_, unserve_timer_;
    // Every link's pump, so the heartbeat can drop idle ones' AEAD state (~2.3 KiB each).
    relay::IdlePumps pumps_;
    std::map<std::uint16_t, relay::ServeEntry> available_;
    std::vector<LocalServe> serves_;
    std::vector<LocalUse> uses_;
    std::uint32_t next_req_ = 1;
    std::map<std::uint32_t, std::function<void(const relay::Frame&)>> waiting_;  // req -> reply handler
    std::map<std::uint32_t, std::string> serve_reqs_;                            // req -> serve name
    std::map<std::uint64_t, std::pair<Clock::time_point, ReplyFn>> pings_;
    relay::UnserveTimers unserve_timers_;
    std::shared_ptr<asio::local::stream_protocol::acceptor> ctl_acceptor_;
    std::string ctl_path_;
    std::uint64_t links_total_ = 0, bytes_total_ = 0;
    std::uint64_t e2e_refused_ = 0;  // links refused by the end-to-end check (a mismatch, another secret, a swapped key)
    // Parked links (ready for a LINK_OPEN) and standby ones (waiting for a LINK_REQUEST); its
    // generation moves on when the control session ends: older pooled links are dropped.
    relay::AgentPools<relay::StreamPtr> pools_{0, kMaxIdleLinks};
    int exit_code_ = 0;
};

// ensure_state_dir(), refused (config error, 78) unless we own it and it is closed to others.
std::filesystem::path private_state_dir();

// "tn-vnet-NAME-KEY": KEY is 12 hex digits of SHA-256(first route, group, name), so that instances are
// told apart by what identifies them; the lock and the control socket are named after it. Only the
// first address counts: adding or removing failover routes keeps the name (and `ctl -c FILE` finds it).
std::string instance_stem(const VnetConfig& cfg);
// $STATE/tn-vnet-NAME-KEY.sock
std::string ctl_socket_path(const VnetConfig& cfg);

}  // namespace tn::vnet
