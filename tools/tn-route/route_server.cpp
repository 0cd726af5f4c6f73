// tn-route's runtime: connection setup (TLS, hello, challenge), control sessions, link pairing.
#include "route_session.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/error.hpp"
#include "base/runtime_dir.hpp"
#include "heartbeat_rate.hpp"
#include "relay/auth.hpp"
#include "relay/io_tls.hpp"

namespace tn::route {

using namespace relay;


namespace {
// A connection must finish TLS, hello and its first frame within this (slowloris guard); the gate caps
// how many may be at it at once.
constexpr auto kSetupTimeout = std::chrono::seconds(5);
// How long a released custom domain or remote_port stays reserved for its group.
constexpr auto kClaimGrace = std::chrono::milliseconds(300000);

Frame error_frame(ErrorCode c, const std::string& m) { return to_frame(ErrorMsg{c, m}); }

// TN_TEST_ROUTE_EXTRA_SESSIONS: a test-only knob (route_server.hpp), read here so that the runner and
// the config never see it. Anything but digits counts as unset.
std::size_t test_extra_sessions() {
    const char* v = std::getenv("TN_TEST_ROUTE_EXTRA_SESSIONS");
    if (!v || !*v || std::strspn(v, "0123456789") != std::strlen(v)) return 0;
    return static_cast<std::size_t>(std::strtoull(v, nullptr, 10));
}
}  // namespace

void refuse(const StreamPtr& s, ErrorCode c, const std::string& m) {
    async_write_bytes(s, encode_frame(error_frame(c, m)), [s](error_code) { s->close(); });
}

RouteServer::RouteServer(asio::io_context& io, RouteConfig cfg, const log::Logger& log, double time_scale)
    : io_(io), cfg_(std::move(cfg)), log_(log), scale_(time_scale), test_extra_sessions_(test_extra_sessions()),
      setups_(std::make_shared<SetupTable>(SetupCaps::for_fd_limit(fd_limit()))), held_(scaled(kClaimGrace)), sweep_timer_(io),
      window_timer_(io),
      heads_(std::make_shared<SetupTable>(SetupCaps::for_fd_limit(fd_limit()))),
      dash_heads_(std::make_shared<SetupTable>(SetupCaps{64, 8})),
      tls_heads_(std::make_shared<SetupTable>(SetupCaps::for_fd_limit(fd_limit()))) {}

RouteServer::~RouteServer() {
    std::error_code ec;
    if (!control_path_.empty()) std::filesystem::remove(control_path_, ec);
}

std::chrono::milliseconds RouteServer::heartbeat_interval() const {
    return heartbeat_interval_for(sessions_.size() + test_extra_sessions_, scale_);
}

void RouteServer::answer_ping(const SessionPtr& ss, const Ping& m) {
    if (ss->closed) return;
    auto out = encode_frame(to_frame(Pong{m.token}));
    if (auto next = heartbeat_update(ss->takes_heartbeats, ss->heartbeat, heartbeat_interval())) {
        // The vnet takes the new interval as it reads this frame; the session's timeout moves now,
        // so a shorter interval is watched as soon as it is in force.
        ss->heartbeat = *next;
        ss->silence_timeout = silence_timeout_for(*next);
        auto hb = encode_frame(to_frame(Heartbeat{static_cast<std::uint32_t>(next->count())}));
        out.insert(out.end(), hb.begin(), hb.end());
    }
    ss->w->enqueue(std::move(out));  // one buffer: one write (one TLS record), as a lone PONG
}

Clock::duration RouteServer::scaled(std::chrono::milliseconds d) const {
    return std::chrono::duration_cast<Clock::duration>(d * scale_);
}

std::shared_ptr<TcpAcceptLoop> RouteServer::accept_loop(std::shared_ptr<tcp::acceptor> acc, std::function<void(tcp::socket)> f,
                                                        const std::string& what) {
    return TcpAcceptLoop::start(std::move(acc),
                                {std::move(f), [this](const std::string& m) { log_.warn(m); }, [this]() { shed(); }}, what);
}

void RouteServer::start(const std::string& fingerprint) {
    fingerprint_ = fingerprint;
    if (cfg_.tls) tls_.emplace(server_context(cfg_.cert, cfg_.key));
    // The control socket first: a state directory open to others stops us before any port is bound.
    control_path_ = route_socket_path(cfg_.listen.port);
    auto control = bind_control_socket(io_, control_path_);
    auto acc = listen_on(cfg_.listen, "vnets");
    apply_http_listeners(cfg_);
    main_loop_ = accept_loop(acc, [this](tcp::socket sock) { on_accept(std::move(sock)); }, "the vnet listener " + cfg_.listen.str());
    main_loop_->pause_unless([this]() { return may_accept(); });
    setups_->on_release = [this]() { resume_accepting(); };
    control_loop_ = LocalAcceptLoop::start(
        control, {[this](local_socket sock) { on_control(std::move(sock)); }, [this](const std::string& m) { log_.warn(m); }, nullptr},
        "the control socket");
    sweep();
    const auto& caps = setups_->gate.caps();
    log_.info("listening on ", cfg_.listen.str(), cfg_.tls ? " (TLS, fingerprint " + fingerprint_ + ")" : " (plain TCP, tls = false)",
              " groups=", cfg_.groups.size(), " setup caps ", caps.global, "/", caps.per_source, " per source, ", caps.window,
              " at work");
}

void RouteServer::stop() {
    if (stopped_) return;
    stopped_ = true;
    for (auto* l : {&main_loop_, &http_loop_, &dash_loop_, &tls_loop_})
        if (*l) (*l)->stop();
    if (control_loop_) control_loop_->stop();
    sweep_timer_.cancel();
    window_timer_.cancel();
    for (auto& [port, r] : remotes_) r.loop->stop();
    remotes_.clear();
    for (auto& [port, u] : udp_remotes_) u.use->stop();
    udp_remotes_.clear();
    for (auto& [id, ss] : std::map(sessions_)) {
        ss->closed = true;
        ss->s->close();
    }
    sessions_.clear();
    auto gone = links_.stop();
    for (auto& l : gone.links) l->close();
    for (auto& e : gone.ended) e.pending.data.user->close();
    for (auto& [id, a] : std::map(active_)) a.abort();
    active_.clear();
}

void RouteServer::shed() {
    for (auto* t : {&setups_, &heads_, &dash_heads_, &tls_heads_}) {
        if (auto v = (*t)->gate.victim()) return (*t)->evict(*v);
    }
}

bool RouteServer::may_accept() {
    if (setups_->gate.window_open(Clock::now())) return true;
    if (auto at = setups_->gate.window_moves_at()) {
        window_timer_.expires_at(*at);
        window_timer_.async_wait([this](error_code ec) {
            if (!ec) resume_accepting();
        });
    }
    return false;
}

void RouteServer::resume_accepting() {
    if (main_loop_ && !stopped_) main_loop_->resume();
}

void RouteServer::on_accept(tcp::socket sock) {
    error_code e2;
    auto ep = sock.remote_endpoint(e2);
    if (e2) return;  // already gone
    auto lg = peer_log(ep);
    auto source = source_key(ep.address());
    if (!auth_fails_.allowed(source, Clock::now())) return sock.close(e2);  // it guessed tokens: no TLS for it for now
    auto admit = setups_->gate.admit(source, Clock::now(), has_bytes(sock));
    if (admit.evict) setups_->evict(*admit.evict);  // a silent, bigger-source or slow setup makes room
    if (!admit.id) {
        ++setups_->refused;
        lg.debug("connection closed: ", setups_->gate.from(source),
                   " connections from that address are still in setup");
        return sock.close(e2);
    }
    auto setup = std::make_shared<Setup>(io_, setups_, *admit.id);
    setups_->live[*admit.id] = setup;
    setup->timer.expires_after(kSetupTimeout);
    std::weak_ptr<Setup> weak = setup;
    setup->timer.async_wait([weak](error_code ec) {
        auto st = weak.lock();
        if (!ec && st && st->close) st->close();
    });
    // Frames are written whole (one write per frame or batch): Nagle would only hold the small
    // ones (LINK_REQUEST, LINK_OK) back behind an unacknowledged earlier write.
    sock.set_option(tcp::no_delay(true), e2);
    fit_buffers_to_path(sock);
    if (!tls_) return on_connection(std::make_shared<Stream>(std::move(sock)), lg, setup);
    classify(std::make_shared<tcp::socket>(std::move(sock)), lg, setup);
}

// With tls = true a connection is either a control connection, which starts a TLS handshake (its
// first byte is a TLS record type, 0x16), or a link, which is plain TCP and starts with our hello's
// 'T' (protocol 2: links are sealed end to end instead). One peeked byte tells them apart.
void RouteServer::classify(std::shared_ptr<tcp::socket> sock, log::Context lg, SetupPtr setup) {
    setup->close = [w = std::weak_ptr<tcp::socket>(sock)]() {
        error_code ec;
        if (auto p = w.lock()) p->close(ec);
    };
    sock->async_wait(tcp::socket::wait_read, [this, sock, lg, setup](error_code ec) {
        if (ec || stopped_) return sock->close(ec);
        std::uint8_t first = 0;
        auto n = ::recv(sock->native_handle(), &first, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return classify(sock, lg, setup);  // a readiness report without a byte: wait again
        if (n != 1) return sock->close(ec);
        if (auto t = setup->table.lock()) t->gate.progressed(setup->id);  // it speaks: no longer idle
        if (first == 0x16) on_connection(std::make_shared<Stream>(std::move(*sock), *tls_), lg, setup);
        else on_connection(std::make_shared<Stream>(std::move(*sock)), lg, setup);
    });
}

void RouteServer::on_connection(StreamPtr s, log::Context lg, SetupPtr setup) {
    // Until its first frame is in, the setup deadline and the gate's eviction close it.
    setup->close = [w = std::weak_ptr<Stream>(s)]() {
        if (auto p = w.lock()) p->close();
    };
    auto hold = setup;  // held by every handler until the first frame is in: then the slot frees itself
    // The route answers the vnet's hello rather than sending its own first (version 6): its hello
    // names the version it speaks on this connection, the vnet's own when it speaks it, so a
    // version-5 vnet (which refuses any other) still connects. Every vnet sends its hello first.
    auto after_tls = [this, s, lg, hold]() {
        async_read_hello(s, [this, s, lg, hold](error_code ec, std::uint16_t v, std::string why) {
            if (ec) {
                if (ec == asio::error::invalid_argument) lg.warn("connection refused: ", why);
                return s->close();
            }
            if (auto t = hold->table.lock()) t->gate.progressed(hold->id);
            auto hello = encode_hello(v == kOldestVersion ? kOldestVersion : kVersion);
            Bytes out(hello.begin(), hello.end());
            if (v != kVersion && v != kOldestVersion) {
                lg.warn("vnet speaks protocol version ", v, "; refused");
                auto err = encode_frame(error_frame(
                    ErrorCode::version, "this tn-route speaks relay protocol version " + std::to_string(kVersion) + " (and " +
                                            std::to_string(kOldestVersion) + "), the vnet speaks " + std::to_string(v) + ": update " +
                                            (v < kVersion ? "tn-vnet" : "tn-route")));
                out.insert(out.end(), err.begin(), err.end());
                return async_write_bytes(s, std::move(out), [s](error_code) { s->close(); });
            }
            auto nonce = random_nonce();
            s->challenge = nonce;
            auto ch = encode_frame(to_frame(Challenge{nonce}));
            out.insert(out.end(), ch.begin(), ch.end());
            async_write_bytes(s, std::move(out), [](error_code) {});
            async_read_frame(s, [this, s, lg, hold, nonce, v](error_code ec2, Frame f, std::string why2) {
                if (stopped_) return;
                if (ec2) {
                    if (ec2 == asio::error::invalid_argument) {
                        lg.warn("protocol error: ", why2, "; closing that connection");
                        return refuse(s, ErrorCode::protocol, why2);
                    }
                    return s->close();
                }
                on_first_frame(s, lg, nonce, v, std::move(f));
            });
        });
    };
    if (!s->tls()) return after_tls();
    s->tls_conn().async_handshake(TlsConn::Role::server, [this, s, lg, hold, after_tls](error_code ec) {
        if (ec) {
            lg.debug("TLS handshake failed: ", ec.message());
            return s->close();
        }
        after_tls();
    });
}

void RouteServer::on_first_frame(StreamPtr s, const log::Context& lg, Nonce nonce, std::uint16_t version, Frame f) {
    try {
        if (f.type == MsgType::auth) {
            // A control connection proves the token and receives the session ticket: never in clear
            // on a route that has TLS.
            if (tls_ && !s->tls()) {
                lg.warn("plain control connection refused: this route has tls = true");
                return refuse(s, ErrorCode::refused, "this tn-route requires TLS (tls = true): set tls = true and its fingerprint in the vnet");
            }
            return start_session(s, lg, nonce, version, from_frame<Auth>(f));
        }
        if (s->tls()) throw WireError("link frame " + std::string(type_name(f.type)) + " over TLS (protocol 2 links are plain TCP, sealed end to end)");
        switch (f.type) {
            case MsgType::link_open: return link_open(s, lg, from_frame<LinkOpen>(f));
            case MsgType::link_accept: return link_accept(s, lg, from_frame<LinkAccept>(f));
            case MsgType::link_park: {
                auto m = from_frame<LinkPark>(f);
                return link_pooled(s, lg, link_session(s, MsgType::link_park, m.vnet_id, 0, m.mac), false);
            }
            case MsgType::link_standby: {
                auto m = from_frame<LinkStandby>(f);
                return link_pooled(s, lg, link_session(s, MsgType::link_standby, m.vnet_id, 0, m.mac), true);
            }
            default:
                throw WireError("unexpected first frame " + std::string(type_name(f.type)));
        }
    } catch (const WireError& e) {
        lg.warn("protocol error: ", e.what(), "; closing that connection");
        refuse(s, ErrorCode::protocol, e.what());
    }
}

void RouteServer::start_session(StreamPtr s, const log::Context& lg, Nonce nonce, std::uint16_t version, const Auth& a) {
    error_code e;
    auto ep = s->socket().remote_endpoint(e);
    if (e) return s->close();
    auto source = source_key(ep.address());
    auto now = Clock::now();
    // An address that failed too often waits (whatever it sends now): guessing tokens stays slow, and
    // other addresses are not touched.
    if (!auth_fails_.allowed(source, now)) {
        if (auto held = auth_log_.allow(now))
            lg.warn("AUTH refused unchecked: too many failed attempts from ", source,
                      *held ? " (" + std::to_string(*held) + " more auth lines not logged)" : "");
        return refuse(s, ErrorCode::limit, "limit: too many failed authentications from this address; retry later");
    }
    auto alog = lg.with("vnet", a.name).with("group", a.group);
    const Group* g = cfg_.group(a.group);
    // Unknown group and wrong token get the same answer: no oracle for which group names exist.
    auto binding = session_binding(s->tls() ? s->ssl() : nullptr);
    if (!g || !equal(a.mac, vnet_proof(g->token.expose(), nonce, a.nonce, a.group, a.name, binding))) {
        auth_fails_.failed(source, now);
        if (auto held = auth_log_.allow(now))
            alog.warn("auth failed",
                      *held ? " (" + std::to_string(*held) + " more auth lines not logged)" : "");
        return refuse(s, ErrorCode::auth, "authentication failed: wrong group or token");
    }
    auto res = reg_.add_vnet(a.group, a.name, a.instance);
    if (res.replaced) drop_replaced(res, alog);
    if (!res.ok) {
        alog.warn("vnet refused: ", res.message);
        return refuse(s, ErrorCode::limit, res.message);
    }
    auto ss = std::make_shared<Session>(alog);
    ss->s = s;
    ss->w = std::make_shared<FrameWriter>(s);
    ss->vnet_id = res.id;
    ss->group = a.group;
    ss->name = a.name;
    ss->peer = ep.address().to_string() + ":" + std::to_string(ep.port());
    ss->ticket = random_ticket();
    ss->takes_heartbeats = speaks_heartbeat(version);
    sessions_[res.id] = ss;
    traffic_.vnet_up({ss->group, ss->name});
    links_.vnet_up(res.id);
    std::weak_ptr<Session> weak = ss;
    ss->w->on_error = [this, weak](error_code ec) {
        if (auto p = weak.lock()) drop_session(p, "write failed: " + ec.message());
    };
    // The interval depends on how many sessions are live now; a version-6 session is moved to the
    // route's interval of the moment when it pings (answer_ping), a version-5 one keeps this one.
    auto hb = heartbeat_interval();
    ss->heartbeat = hb;
    ss->silence_timeout = silence_timeout_for(hb);
    ss->send(to_frame(Welcome{res.id, ss->ticket, route_proof(g->token.expose(), a.nonce, nonce, binding),
                              static_cast<std::uint32_t>(hb.count())}));
    for (const auto& r : reg_.serves(a.group)) ss->send(to_frame(ServeUp{r.entry()}));
    ss->log.info("vnet up id=", res.id);
    read_session_frames(ss);
}

// The vnet session that `res` replaced (its reconnect won): closed, with its links and serves.
void RouteServer::drop_replaced(const relay::AddVnetResult& res, const log::Context& alog) {
    if (auto it = sessions_.find(*res.replaced); it != sessions_.end()) {
        auto old = it->second;
        sessions_.erase(it);
        traffic_.vnet_down({old->group, old->name});
        old->closed = true;
        old->s->close();
        alog.info("vnet ", *res.replaced, " replaced by its reconnect");
    }
    // Its pre-opened links and the links waiting for it go with it.
    auto gone = links_.vnet_down(*res.replaced);
    for (const auto& l : gone.links) l->close();
    for (auto& e : gone.ended) end_pending(std::move(e), {});
    for (const auto& r : res.freed) serve_gone(r);
}

void RouteServer::read_session_frames(const SessionPtr& ss) {
    std::weak_ptr<Session> weak = ss;
    // The control read loop: one frame at a time, each capped.
    // Only the pending frame read owns `loop` (it sees itself weakly): a read still pending at shutdown
    // is dropped with the io_context and frees the loop; a self-capture leaked it (LeakSanitizer).
    auto loop = std::make_shared<std::function<void()>>();
    std::weak_ptr<std::function<void()>> self = loop;
    *loop = [this, weak, self]() {
        auto p = weak.lock();
        auto loop = self.lock();
        if (!p || p->closed || !loop) return;
        async_read_frame(p->s, [this, weak, loop](error_code ec, Frame f, std::string why) {
            auto p2 = weak.lock();
            if (!p2 || p2->closed) {
                *loop = nullptr;  // break the self-reference
                return;
            }
            if (ec) {
                *loop = nullptr;
                return drop_session(p2, ec == asio::error::invalid_argument ? "protocol error: " + why : why);
            }
            p2->last_rx = Clock::now();
            session_frame(p2, std::move(f));
            if (!p2->closed) (*loop)();
            else *loop = nullptr;
        });
    };
    (*loop)();
}

void RouteServer::drop_session(const SessionPtr& ss, const std::string& why) {
    if (ss->closed) return;
    ss->closed = true;
    ss->s->close();
    auto gone = links_.vnet_down(ss->vnet_id);
    for (const auto& l : gone.links) l->close();
    sessions_.erase(ss->vnet_id);
    traffic_.vnet_down({ss->group, ss->name});
    auto freed = reg_.remove_vnet(ss->vnet_id);
    for (const auto& r : freed) serve_gone(r);
    for (auto& e : gone.ended) end_pending(std::move(e), {});
    ss->log.info("vnet down id=", ss->vnet_id, ": ", why, " (freed ",
              freed.size(), " serves)");
}

void RouteServer::serve_gone(const ServeRecord& r) {
    // Its names and port stay its group's for a while: a vnet that reconnects finds them free.
    held_.release(r.group, r.spec.domains, r.spec.remote_port, Clock::now());
    if (r.spec.remote_port && r.spec.type == "udp") close_udp_remote(r.spec.remote_port, "serve " + std::to_string(r.spec.id) + " gone");
    else if (r.spec.remote_port) {
        if (auto it = remotes_.find(r.spec.remote_port); it != remotes_.end()) {
            it->second.loop->stop();
            remotes_.erase(it);
            log_.info("remote_port ", r.spec.remote_port, " closed (serve ", r.spec.id, " gone)");
        }
    }
    broadcast(r.group, to_frame(ServeDown{r.spec.id}));
}

void RouteServer::broadcast(const std::string& group, const Frame& f) {
    for (auto id : reg_.members(group))
        if (auto it = sessions_.find(id); it != sessions_.end()) it->second->send(f);
}

std::vector<std::string> RouteServer::reload(RouteConfig next) {
    std::vector<std::string> restart;
    if (!(next.listen == cfg_.listen)) restart.push_back("[route] listen");
    if (next.tls != cfg_.tls) restart.push_back("[route] tls");
    if (next.cert != cfg_.cert || next.key != cfg_.key) restart.push_back("[route] cert/key");
    if (next.proxy_bind != cfg_.proxy_bind) restart.push_back("[route] proxy_bind");
    // Listeners first: if a new address cannot be bound, the old one was already closed and the
    // error says so; the rest of the reload still applies.
    std::string failed;
    try {
        apply_http_listeners(next);
    } catch (const Error& e) {
        failed = e.what();
    }
    // A group that is gone or has a new token or new domains/ports revokes its sessions: the vnets reconnect and prove the
    // new token (or are refused). Sessions of unchanged groups are not touched.
    std::vector<SessionPtr> revoked;
    for (const auto& [id, ss] : sessions_) {
        const Group* old_g = cfg_.group(ss->group);
        const Group* new_g = nullptr;
        for (const auto& g : next.groups)
            if (g.name == ss->group) new_g = &g;
        if (!new_g || !old_g || new_g->token.expose() != old_g->token.expose() || !(new_g->claims == old_g->claims))
            revoked.push_back(ss);
    }
    cfg_.groups = std::move(next.groups);
    for (const auto& ss : revoked) drop_session(ss, "its group was removed or its token changed (reload)");
    cfg_.http_listen = next.http_listen;
    cfg_.https_listen = next.https_listen;
    cfg_.dashboard_listen = next.dashboard_listen;
    cfg_.dashboard_user = next.dashboard_user;
    cfg_.dashboard_password = next.dashboard_password;
    // UDP remote_ports opened from now on take the new limits; open ones keep theirs.
    cfg_.udp_idle_timeout = next.udp_idle_timeout;
    cfg_.udp_max_flows = next.udp_max_flows;
    if (!failed.empty()) throw Error(ExitCode::unavailable, failed);
    return restart;
}

log::Context RouteServer::peer_log(const tcp::endpoint& ep) const {
    return log_.with("peer", ep.address().to_string() + ":" + std::to_string(ep.port()));
}

SessionPtr RouteServer::link_session(const StreamPtr& s, MsgType type, std::uint32_t vnet_id, std::uint64_t arg,
                                     const Mac& mac, std::uint8_t cipher) const {
    auto it = sessions_.find(vnet_id);
    if (it == sessions_.end() || it->second->closed) return nullptr;
    if (!equal(mac, link_proof(it->second->ticket, type, s->challenge, vnet_id, arg, cipher))) return nullptr;
    return it->second;
}

}  // namespace tn::route
