// RouteServer: tn-route's runtime on one Asio event loop: accepts vnets and links, authenticates,
// keeps the registry, pairs links, runs remote_port listeners and heartbeats, answers status.
#pragma once

#include <chrono>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/log.hpp"
#include "relay/io_accept.hpp"
#include "relay/io_control.hpp"
#include "relay/io_pump.hpp"
#include "relay/io_record_relay.hpp"
#include "relay/pairing_core.hpp"
#include "relay/registry.hpp"
#include "relay/seal.hpp"
#include "relay/claims.hpp"
#include "relay/rate_limit.hpp"
#include "relay/setup_gate.hpp"
#include "relay/sni.hpp"
#include "route_config.hpp"
#include "route_traffic.hpp"
#include "relay/io_udp_use.hpp"

namespace tn::route {

using relay::asio::steady_timer;
using Clock = std::chrono::steady_clock;

// Why an HTTPS vhost client was refused (status --json "tls_vhost.refused", /metrics "reason").
inline constexpr const char* kTlsRefusals[] = {"bad_hello", "cut", "no_sni", "unknown_name", "timeout", "no_serve", "limit", "link_failed"};

struct Session;
using SessionPtr = std::shared_ptr<Session>;
struct Setup;
using SetupPtr = std::shared_ptr<Setup>;
struct SetupTable;
struct HelloState;

// A flow of a UDP remote_port waiting for its link (route_udp.cpp): the listener's port, the flow in
// its table, and its source as the pairing core's per-source limits key it.
struct UdpFlowUser {
    std::uint16_t port = 0;
    std::uint64_t flow = 0;
    std::string source;
};

class RouteServer {
public:
    // `time_scale` shrinks heartbeats and timeouts for tests (TN_RELAY_TIME_SCALE); 1 in production.
    RouteServer(relay::asio::io_context& io, RouteConfig cfg, const log::Logger& log, double time_scale);
    ~RouteServer();
    // Binds every listener (throws tn::Error(unavailable) when one cannot be bound) and starts.
    void start(const std::string& fingerprint);
    void stop();
    std::string status(bool json) const;
    // status --json --limit N [--after ID]: the same document with at most `limit` vnets, those whose id
    // is above `after` (ids ascending), plus "vnet_count" and "next_after" (the id to ask after next,
    // null on the last page). So a script pages through 10,000 vnets a bounded reply at a time.
    std::string status_page(std::uint32_t after, std::size_t limit) const;
    // SIGHUP: applies what changed and can change live (groups and tokens for new sessions, the
    // [http] and [dashboard] listeners and credentials); returns what still needs a restart.
    std::vector<std::string> reload(RouteConfig next);

private:
    friend struct Session;
    void on_accept(relay::tcp::socket sock);
    void shed();  // out of descriptors: close the connection in setup that the gate picks
    // The vnet listener's may_accept: false while the setup gate's handshake window is full, with a
    // timer to resume it when the window's oldest entry turns slow (a freed slot resumes it sooner).
    bool may_accept();
    void resume_accepting();  // a window slot freed or moved: the vnet listener accepts again
    void classify(std::shared_ptr<relay::tcp::socket> sock, log::Context lg, SetupPtr setup);
    void on_connection(relay::StreamPtr s, log::Context lg, SetupPtr setup);
    // `version`: the hello the connection was answered with (kVersion or kOldestVersion).
    void on_first_frame(relay::StreamPtr s, const log::Context& lg, relay::Nonce nonce, std::uint16_t version, relay::Frame f);
    void start_session(relay::StreamPtr s, const log::Context& lg, relay::Nonce nonce, std::uint16_t version, const relay::Auth& a);
    void drop_replaced(const relay::AddVnetResult& res, const log::Context& alog);
    void read_session_frames(const SessionPtr& ss);  // the control read loop, until the session closes
    void session_frame(const SessionPtr& ss, relay::Frame f);
    // PONG, and in the same write a HEARTBEAT when a version-6 session's interval is not the route's
    // current one (heartbeat_rate.hpp): moving every vnet costs no wake-up and no write of its own.
    void answer_ping(const SessionPtr& ss, const relay::Ping& m);
    std::chrono::milliseconds heartbeat_interval() const;  // for the sessions live now
    void drop_session(const SessionPtr& ss, const std::string& why);
    void add_serve(const SessionPtr& ss, const relay::Serve& m);
    // Why `group` may not take the serve's remote_port or custom domains, or "" when it may.
    std::string claim_refusal(const std::string& group, const relay::ServeSpec& spec) const;
    void serve_gone(const relay::ServeRecord& r);
    void broadcast(const std::string& group, const relay::Frame& f);
    void link_open(relay::StreamPtr s, const log::Context& lg, const relay::LinkOpen& m);
    void link_accept(relay::StreamPtr s, const log::Context& lg, const relay::LinkAccept& m);
    void link_pooled(relay::StreamPtr s, log::Context lg, SessionPtr ss, bool standby, bool reparked = false);
    // Who waits on the using side of a link: a vnet's link connection, a remote_port client, or an
    // HTTP client of a vhost (whose already-read request head is `prefix`).
    using UserKind = relay::UserKind;
    void request_link(relay::StreamPtr user, const std::string& group, std::uint16_t id, UserKind kind, const log::Context& lg,
                      relay::Bytes prefix = {}, std::uint32_t user_vnet = 0, const relay::LinkKey& key = {},
                      relay::Cipher cipher = relay::Cipher::none, const UdpFlowUser* udp = nullptr);
    void standby_answer(relay::StreamPtr s, log::Context lg, std::uint64_t link_id);
    bool can_repark(std::uint32_t vnet_id) const;  // its session is up and its pool has room
    void repark(relay::StreamPtr s, std::uint32_t vnet_id, bool standby);
    // A pending link ended unpaired: says why (with `detail`) to its user and closes it.
    void fail_pending(std::uint64_t link_id, relay::PendingEnd why, const std::string& detail = {},
                      std::optional<std::uint32_t> from = std::nullopt);
    // [http] vhosts and [dashboard] (route_http.cpp).
    void apply_http_listeners(const RouteConfig& next);
    std::shared_ptr<relay::tcp::acceptor> listen_on(const HostPort& at, const char* what);
    void accept_http(relay::tcp::socket sock, bool dashboard);
    void read_head(relay::StreamPtr s, log::Context lg, const std::string& source, bool dashboard);
    void on_vhost(relay::StreamPtr s, const log::Context& lg, std::string buf, std::size_t head_size, const std::string* host);
    void on_dashboard(relay::StreamPtr s, const log::Context& lg, const std::string& method, const std::string& path,
                      const std::string* authorization);
    void http_reply(const relay::StreamPtr& s, std::string response, int status, bool vhost);
    // A client of an [http] or [dashboard] listener through its gate: its setup slot (closing the
    // stream when evicted), or null when its address already holds its share (closed, counted).
    SetupPtr admit_client(const std::shared_ptr<SetupTable>& table, const relay::StreamPtr& s, const std::string& source,
                          const log::Context& lg, const char* what);
    // [http] listen_tls: HTTPS vhosts by SNI, relayed unopened (route_tls.cpp).
    void accept_tls(relay::tcp::socket sock);
    void read_hello(relay::StreamPtr s, log::Context lg, std::shared_ptr<HelloState> st, SetupPtr slot);
    // A fatal alert, a lingering close, and one more of `reason` in status.
    void tls_refuse(const relay::StreamPtr& s, const log::Context& lg, relay::TlsAlert alert, const std::string& reason,
                    const std::string& why);
    std::string dashboard_html() const;
    std::string metrics() const;
    bool open_remote_port(const relay::ServeRecord& r, std::string& why);
    // A serve of type udp with a remote_port (route_udp.cpp): a UDP socket on proxy_bind whose every
    // source is a flow (relay/udp_flows) with its own link; the route is the using end of each.
    bool open_udp_remote(const relay::ServeRecord& r, std::string& why);
    void close_udp_remote(std::uint16_t port, const std::string& why);
    void open_udp_flow(std::uint16_t port, std::uint64_t flow);
    void udp_bound(std::uint64_t link_id, const relay::PendingKey& k, const UdpFlowUser& u, relay::StreamPtr s, relay::Bytes first,
                   std::shared_ptr<relay::LinkSeal> own);
    void udp_failed(const UdpFlowUser& u, const std::string& why);
    void udp_status_json(std::ostream& o) const;
    void udp_metrics(std::ostream& o) const;
    void accept_remote(relay::tcp::socket sock, std::uint16_t port);
    std::shared_ptr<relay::TcpAcceptLoop> accept_loop(std::shared_ptr<relay::tcp::acceptor> acc, std::function<void(relay::tcp::socket)> f,
                                                      const std::string& what);
    void sweep();
    void on_control(relay::local_socket sock);
    // The session whose ticket made `mac` (link_proof over this connection's challenge), or null.
    SessionPtr link_session(const relay::StreamPtr& s, relay::MsgType type, std::uint32_t vnet_id, std::uint64_t arg,
                            const relay::Mac& mac, std::uint8_t cipher = 0) const;
    Clock::duration scaled(std::chrono::milliseconds d) const;

    // The context every line about one connection carries: its peer address (frp's xlog prefix).
    log::Context peer_log(const relay::tcp::endpoint& ep) const;

    relay::asio::io_context& io_;
    RouteConfig cfg_;
    const log::Logger& log_;
    double scale_;
    // TN_TEST_ROUTE_EXTRA_SESSIONS (tests only, not for users): sessions the heartbeat interval counts
    // on top of the live ones, so a test moves the interval with two vnets instead of thousands.
    std::size_t test_extra_sessions_ = 0;
    std::string fingerprint_;
    std::optional<relay::asio::ssl::context> tls_;
    std::shared_ptr<relay::TcpAcceptLoop> main_loop_;
    std::shared_ptr<relay::LocalAcceptLoop> control_loop_;
    std::shared_ptr<SetupTable> setups_;  // connections between accept and their first frame
    relay::Reservations held_;             // released custom domains and remote ports, kept for their group
    std::filesystem::path control_path_;
    steady_timer sweep_timer_;
    steady_timer window_timer_;  // resumes the paused vnet listener (may_accept)
    relay::Registry reg_;
    std::map<std::uint32_t, SessionPtr> sessions_;
    // What the runner keeps with a pending link; the pairing core keeps the rest (links_).
    struct Pending {
        relay::StreamPtr user;
        relay::Bytes prefix;   // bytes already read from the user (an HTTP request head), sent first
        relay::StreamPtr via;  // the standby link the LINK_REQUEST went down, if not the control connection
        std::uint32_t user_vnet = 0;  // the using vnet (kind link)
        relay::LinkKey key{};         // tls = true: the using vnet's (LINK_OPEN) or our own; boxed for the serving side
        relay::Cipher cipher = relay::Cipher::none;
        std::optional<UdpFlowUser> udp;  // set: a UDP remote_port flow, not `user`, waits for this link
    };
    using Pairing = relay::LinkPairing<relay::StreamPtr, Pending>;
    Pairing links_;  // pending links and every vnet's pre-opened links
    void end_pending(Pairing::Ended e, const std::string& detail);
    relay::LogThrottle pending_log_;  // refusals over budget: one line per interval
    relay::FailureLimiter auth_fails_;  // failed AUTH per source address
    relay::LogThrottle auth_log_{std::chrono::seconds(1)};
    // Sends LINK_OK (after `first`) to the serving side `s` and starts relaying between it and p.user.
    void bind_link(std::uint64_t link_id, Pairing::Pending p, relay::StreamPtr s, relay::Bytes first);
    // bind_link's two cases: two vnets (records relayed unopened), or the route as the using end
    // (remote_port, vhost) sealing its own leg with `own` after LINK_OK and any request head.
    void relay_vnet_pair(std::uint64_t link_id, const Pairing::Pending& pp, const relay::StreamPtr& s, relay::Bytes first);
    void start_route_leg(std::uint64_t link_id, Pairing::Pending pp, relay::StreamPtr s, relay::Bytes first,
                         std::shared_ptr<relay::LinkSeal> own);
    // A paired link ended: counted (`ab` and `ba` as they travelled, `in` and `out` the users' bytes
    // for `tag`'s traffic), logged, no longer active.
    void link_closed(std::uint64_t link_id, const relay::LinkEnd& end, std::uint64_t ab, std::uint64_t ba, const LinkTag& tag,
                     std::uint64_t in, std::uint64_t out);
    // The serving (and using) vnet's names for the book, or nullopt when the serving vnet is gone.
    std::optional<LinkTag> link_tag(const std::string& group, std::uint32_t serve_vnet, std::uint16_t id, std::uint32_t user_vnet) const;
    // The book with the open links' bytes so far: what status, the dashboard and /metrics report.
    std::map<TrafficBook::Key, TrafficBook::Vnet> traffic_now() const;
    // `limit` 0: every vnet, as status --json always gave them.
    void status_json(std::ostream& o, std::uint32_t after = 0, std::size_t limit = 0) const;
    void vnet_json(std::ostream& o, const Session& ss, const std::map<TrafficBook::Key, TrafficBook::Vnet>& book, Clock::time_point now) const;
    struct Active {
        std::shared_ptr<relay::Pump> pump;          // a leg the route ends itself, or a plain pair
        std::shared_ptr<relay::RecordRelay> relay;  // a sealed vnet<->vnet pair (reused after a clean end)
        LinkTag tag;
        std::uint64_t pre_in = 0;  // a request head or ClientHello the route read and sent ahead of the pump
        std::uint64_t bytes() const {
            return pump ? pump->bytes_a_to_b() + pump->bytes_b_to_a() : relay->bytes_a_to_b() + relay->bytes_b_to_a();
        }
        // The users' bytes (per-serve traffic): the pump counts plaintext, the relay its records' payload.
        std::uint64_t in() const { return pre_in + (pump ? pump->bytes_a_to_b() : relay->payload_a_to_b()); }
        std::uint64_t out() const { return pump ? pump->bytes_b_to_a() : relay->payload_b_to_a(); }
        void abort() const { pump ? pump->abort() : relay->abort(); }
    };
    std::map<std::uint64_t, Active> active_;
    TrafficBook traffic_;  // per vnet and serve (status, /metrics)
    struct Remote {
        std::shared_ptr<relay::TcpAcceptLoop> loop;
        std::string group;
        std::uint16_t id = 0;
    };
    std::map<std::uint16_t, Remote> remotes_;
    struct UdpRemote {
        std::shared_ptr<relay::UdpUse> use;
        std::string group;
        std::uint16_t id = 0;
    };
    std::map<std::uint16_t, UdpRemote> udp_remotes_;
    struct UdpActive {  // a UDP remote_port flow's bound link: its bytes so far for status
        std::weak_ptr<relay::UdpLink> link;
        LinkTag tag;
    };
    std::map<std::uint64_t, UdpActive> udp_active_;
    std::uint64_t next_unserve_ = 1, links_total_ = 0, bytes_total_ = 0, links_reused_ = 0;
    struct UnserveRoute {
        std::uint32_t from = 0, req = 0, target = 0;
    };
    std::map<std::uint32_t, UnserveRoute> unserves_;
    std::shared_ptr<relay::TcpAcceptLoop> http_loop_, dash_loop_, tls_loop_;
    std::optional<HostPort> http_at_, dash_at_, tls_at_;  // what the three listeners are bound to now
    std::shared_ptr<SetupTable> heads_, dash_heads_;  // clients still sending their HTTP head, per listener
    std::map<int, std::uint64_t> http_errors_;   // vhost answers the route gave itself, by status
    std::uint64_t vhost_links_ = 0, tls_links_ = 0;
    std::shared_ptr<SetupTable> tls_heads_;             // TLS clients still sending their ClientHello
    std::map<std::string, std::uint64_t> tls_errors_;  // TLS clients refused, by reason (status, /metrics)
    relay::LogThrottle tls_log_;
    relay::PipePool pipes_;  // splice(2) pipes for link pairs, lent only while bytes are in flight
    Clock::time_point started_ = Clock::now();
    bool stopped_ = false;
};

}  // namespace tn::route
