// tn-vnet's control session: connect, TLS pin, hello, challenge-response, heartbeats, reconnects,
// and the registry view that serves and uses follow.
#include "vnet_agent.hpp"

#include <cctype>
#include <cstdio>

#include "base/error.hpp"
#include "base/runtime_dir.hpp"
#include "relay/digest.hpp"
#include "relay/io_tls.hpp"

namespace tn::vnet {

using namespace relay;

VnetAgent::VnetAgent(asio::io_context& io, VnetConfig cfg, const log::Logger& log, double time_scale)
    : io_(io), cfg_(std::move(cfg)), log_(log), route_log_(log.with("route", cfg_.routes.front().str())), scale_(time_scale),
      retry_timer_(io), hb_timer_(io),
      unserve_timer_(io),
      unserve_timers_(static_cast<std::uint64_t>(180000 * time_scale), static_cast<std::uint64_t>(60000 * time_scale)) {
    pools_.set_target(cfg_.link_pool);
    if (cfg_.tls) tls_.emplace(client_context());
    for (const auto& s : cfg_.serves) {
        LocalServe ls;
        ls.cfg = s;
        if (!active_at_start(s.active, cfg_.start_serve)) ls.cfg.active = false;
        serves_.push_back(std::move(ls));
    }
    for (const auto& u : cfg_.uses) {
        LocalUse lu;
        lu.cfg = u;
        if (!active_at_start(u.active, cfg_.start_use)) lu.cfg.active = false;
        lu.set(lu.cfg.active ? UseState::standby : UseState::inactive);
        uses_.push_back(std::move(lu));
    }
}

VnetAgent::~VnetAgent() {
    std::error_code ec;
    if (!ctl_path_.empty()) std::filesystem::remove(ctl_path_, ec);
}

// vnet-v2 compatibility: start_serve/start_use only apply with the terminal; without it the config's `active` rules.
bool VnetAgent::active_at_start(bool active, bool start_flag) const { return active && (!cfg_.terminal || start_flag); }

Clock::duration VnetAgent::scaled(std::chrono::milliseconds d) const {
    return std::chrono::duration_cast<Clock::duration>(d * scale_);
}

std::string instance_stem(const VnetConfig& cfg) {
    // What identifies an instance is where it connects and as whom, not its display name alone: a vnet
    // `a` for one route must not block an `a` for another. The name stays readable in the file name
    // (made safe for a path); a hash of route, group and name tells instances apart.
    std::string id = cfg.routes.front().str() + '\0' + cfg.group + '\0' + cfg.name;
    auto md = relay::sha256(id);
    std::string safe;
    for (char c : cfg.name.substr(0, 32)) safe += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ? c : '_';
    static constexpr char hex[] = "0123456789abcdef";
    std::string key;
    for (int i = 0; i < 6; ++i) key += {hex[md[i] >> 4], hex[md[i] & 15]};
    return "tn-vnet-" + safe + "-" + key;
}

std::string describe(ServeState s, const std::string& detail) {
    switch (s) {
        case ServeState::inactive: return "inactive";
        case ServeState::waiting: return "waiting for route";
        case ServeState::registering: return "registering";
        case ServeState::registered: return "registered";
        case ServeState::refused: return "refused: " + detail;
    }
    return "?";
}

std::string describe(UseState s, const std::string& detail) {
    switch (s) {
        case UseState::inactive: return "inactive";
        case UseState::standby: return "standby";
        case UseState::attached: return "attached";
        case UseState::error: return "error: " + detail;
    }
    return "?";
}

std::string ctl_socket_path(const VnetConfig& cfg) { return (state_dir_path() / (instance_stem(cfg) + ".sock")).string(); }

void VnetAgent::start() {
    start_ctl();
    expire_unserves();
    cursor_.restart();
    connect();
}

void VnetAgent::stop() {
    if (stopped_) return;
    stopped_ = true;
    relay::error_code ec;
    retry_timer_.cancel();
    hb_timer_.cancel();
    unserve_timer_.cancel();
    drop_pools();
    if (ctl_acceptor_) ctl_acceptor_->close(ec);
    if (ctl_) ctl_->close();
    for (auto& u : uses_) {
        if (u.listener) u.listener->close(ec);
        if (u.udp) u.udp->stop();
    }
    io_.stop();
}

void VnetAgent::fatal(int code, const std::string& why) {
    log_.error(why);
    exit_code_ = code;
    stop();
}

void VnetAgent::open_route(OnStream done, bool control) {
    auto finish_tcp = [this, done, control](tcp::socket sock, tcp proto) {
        sock.set_option(tcp::no_delay(true));
        relay::fit_buffers_to_path(sock);
        relay::read_interest_only(sock, proto);
        // Only the control connection runs TLS: links are plain TCP, proven by HMAC and sealed end to
        // end (protocol 2), so neither the route nor we spend a handshake or an SSL object on them.
        if (!control) return done({}, track_link(std::make_shared<Stream>(std::move(sock))), {});
        if (!tls_) return done({}, std::make_shared<Stream>(std::move(sock)), {});
        auto s = std::make_shared<Stream>(std::move(sock), *tls_);
        s->tls_conn().async_handshake(relay::TlsConn::Role::client, [this, s, done](relay::error_code ec) {
            if (ec) return done(ec, nullptr, "TLS handshake failed: " + ec.message());
            auto fp = peer_fingerprint(s->ssl());
            if (fp != cfg_.fingerprint) {
                s->close();
                return done(asio::error::access_denied, nullptr,
                            "route certificate fingerprint " + fp + " does not match the pinned " + cfg_.fingerprint);
            }
            done({}, s, {});
        });
    };
    auto sock = std::make_shared<tcp::socket>(io_);
    auto go = [this, sock, finish_tcp, done]() {
        asio::async_connect(*sock, route_eps_, [sock, finish_tcp, done](relay::error_code ec, const tcp::endpoint& ep) {
            if (ec) return done(ec, nullptr, "connect failed: " + ec.message());
            finish_tcp(std::move(*sock), ep.protocol());
        });
    };
    if (!route_eps_.empty()) return go();
    auto res = std::make_shared<tcp::resolver>(io_);
    auto route = current_route();
    res->async_resolve(route.host, std::to_string(route.port),
                       [this, res, go, done, route](relay::error_code ec, tcp::resolver::results_type r) {
                           if (ec) return done(ec, nullptr, "cannot resolve " + route.host + ": " + ec.message());
                           route_eps_.assign(r.begin(), r.end());
                           go();
                       });
}

relay::StreamPtr VnetAgent::track_link(relay::StreamPtr s) {
    if (route_links_.size() >= prune_links_at_) {  // amortised: drop the ended links now and then
        std::erase_if(route_links_, [](const auto& w) { return w.expired(); });
        prune_links_at_ = std::max<std::size_t>(64, 2 * route_links_.size());
    }
    route_links_.push_back(s);
    return s;
}

void VnetAgent::cut_links() {
    for (auto& w : route_links_)
        if (auto s = w.lock()) s->close();
    route_links_.clear();
}

void VnetAgent::connect() {
    if (stopped_) return;
    route_log_ = log_.with("route", current_route().str());
    route_eps_.clear();  // re-resolve on every control reconnect: the route may have moved
    open_route([this](relay::error_code ec, StreamPtr s, std::string why) {
        if (stopped_) return;
        if (ec == asio::error::access_denied) return fatal(77, why);
        if (ec) return schedule_reconnect(why);
        on_control(s);
    }, true);
}

// The pause before trying the next address: uniform up to the backoff's first step (0.5 s), so the
// vnets of a route that died together spread out over the next one instead of arriving in one burst.
static Clock::duration hop_delay(const Backoff& b) {
    return std::chrono::duration_cast<Clock::duration>(b.policy().initial * relay::random_unit());
}

void VnetAgent::retry_after(Clock::duration d) {
    retry_timer_.expires_after(d);
    retry_timer_.async_wait([this](relay::error_code ec) {
        if (!ec) connect();
    });
}

void VnetAgent::schedule_reconnect(const std::string& why) {
    if (stopped_) return;
    if (cursor_.attempt_failed() == RouteCursor::Wait::hop) {
        route_log_.warn("unavailable (", why, "); trying ", current_route().str(), " next");
        return retry_after(hop_delay(backoff_));
    }
    backoff_wait(why);
}

// A whole round failed (or the only route was lost): the capped backoff, then the list from the top.
void VnetAgent::backoff_wait(const std::string& why) {
    auto ms = backoff_.next(backoff_.jitter(relay::random_unit())).count();
    route_log_.warn("unavailable (", why, "); retrying ", cfg_.routes.size() > 1 ? "the route list " : "", "in ", ms, " ms");
    retry_after(std::chrono::milliseconds(ms));
}

void VnetAgent::after_session(const std::string& why, bool from_top) {
    if (from_top) {
        cursor_.restart();
        return retry_after(hop_delay(backoff_));
    }
    if (cursor_.session_lost() == RouteCursor::Wait::backoff) return backoff_wait(why);
    route_log_.warn("moving to ", current_route().str());
    retry_after(hop_delay(backoff_));
}

void VnetAgent::on_control(StreamPtr s) {
    ctl_ = s;
    auto hello = encode_hello();
    async_write_bytes(s, Bytes(hello.begin(), hello.end()), [](relay::error_code) {});
    async_read_hello(s, [this, s](relay::error_code ec, std::uint16_t v, std::string why) {
        if (ec) return schedule_reconnect("hello: " + why);
        auto route_version = v;
        async_read_frame(s, [this, s, route_version](relay::error_code ec2, Frame f, std::string why2) {
            if (ec2) return schedule_reconnect(why2);
            if (f.type == MsgType::error) {
                auto e = from_frame<ErrorMsg>(f);
                if (e.code == ErrorCode::version) return fatal(69, "route refused us: " + e.message);
                return schedule_reconnect("route said: " + e.message);
            }
            if (route_version != kVersion)
                return fatal(69, "route speaks relay protocol version " + std::to_string(route_version) + ", we speak " +
                                     std::to_string(kVersion) + ": update " + (route_version > kVersion ? "tn-vnet" : "tn-route"));
            Nonce nr;
            try {
                nr = from_frame<Challenge>(f).nonce;
            } catch (const WireError& e) {
                return schedule_reconnect(std::string("protocol error: ") + e.what());
            }
            auto nv = random_nonce();
            Auth a{cfg_.group, cfg_.name, instance_, nv, vnet_proof(cfg_.token.expose(), nr, nv, cfg_.group, cfg_.name,
                                                                   session_binding(s->tls() ? s->ssl() : nullptr))};
            async_write_bytes(s, encode_frame(to_frame(a)), [](relay::error_code) {});
            async_read_frame(s, [this, s, nr, nv](relay::error_code ec3, Frame f3, std::string why3) {
                if (ec3) return schedule_reconnect(why3);
                try {
                    if (f3.type == MsgType::error) {
                        auto e = from_frame<ErrorMsg>(f3);
                        if (e.code == ErrorCode::auth)
                            return fatal(77, "route refused authentication for group '" + cfg_.group + "': " + e.message);
                        return schedule_reconnect("route refused: " + e.message);
                    }
                    auto w = from_frame<Welcome>(f3);
                    if (!equal(w.mac, route_proof(cfg_.token.expose(), nv, nr, session_binding(s->tls() ? s->ssl() : nullptr))))
                        return fatal(77, "the route could not prove it holds the group token: refusing it");
                    vnet_id_ = w.vnet_id;
                    ticket_ = w.ticket;
                    heartbeat_ms_ = std::max(relay::kMinHeartbeatMs, w.heartbeat_ms);
                } catch (const WireError& e) {
                    return schedule_reconnect(std::string("protocol error: ") + e.what());
                }
                connected_ = true;
                connected_since_ = last_rx_ = Clock::now();
                backoff_.reset();
                writer_ = std::make_shared<FrameWriter>(s);
                writer_->on_error = [this, s](relay::error_code e) {
                    if (s == ctl_) lost("write failed: " + e.message());
                };
                route_log_ = log_.with("route", current_route().str()).with("vnet_id", std::to_string(vnet_id_));
                route_log_.info("connected as vnet ", vnet_id_, " (", cfg_.name, ", group ", cfg_.group, ")");
                for (auto& ls : serves_)
                    if (ls.cfg.active) register_serve(ls);
                read_loop();
                heartbeat();
            });
        });
    });
}

void VnetAgent::read_loop() {
    auto s = ctl_;
    async_read_frame(s, [this, s](relay::error_code ec, Frame f, std::string why) {
        if (s != ctl_ || !connected_) return;
        if (ec) return lost(ec == asio::error::invalid_argument ? "protocol error: " + why : why);
        last_rx_ = Clock::now();
        try {
            on_frame(std::move(f));
        } catch (const WireError& e) {
            return lost(std::string("protocol error: ") + e.what());
        }
        if (s == ctl_ && connected_) read_loop();
    });
}

void VnetAgent::lost(const std::string& why) {
    if (!connected_) return;
    connected_ = false;
    drop_pools();
    cut_links();
    if (ctl_) ctl_->close();
    ctl_.reset();
    writer_.reset();
    hb_timer_.cancel();
    available_.clear();
    for (auto& s : serves_) {
        s.registered = false;
        if (s.cfg.active) s.set(ServeState::waiting);
    }
    for (auto& u : uses_)
        if (u.cfg.active) detach(u, UseState::standby);
    for (auto& [token, p] : pings_) p.second(Reply{69, "route connection lost\n"});
    pings_.clear();
    waiting_.clear();
    route_log_.warn("lost the route: ", why);
    route_log_ = log_.with("route", current_route().str());  // no vnet id until the next welcome
    bool from_top = std::exchange(restart_round_, false);
    if (!stopped_) after_session(why, from_top);
}

void VnetAgent::heartbeat() {
    if (!connected_) return;
    // 15 s as in every version-5 vnet, or 3 intervals when a busy route stretched the interval past 5 s
    // (tools/tn-route/heartbeat_rate.hpp): its PONGs then come up to 10 s apart.
    auto silent = std::max(scaled(std::chrono::milliseconds(15000)),
                           Clock::duration(3 * std::chrono::milliseconds(heartbeat_ms_)));
    if (Clock::now() - last_rx_ > silent) return lost("route silent past its heartbeat timeout");
    send(to_frame(Ping{0}));
    pumps_.trim();
    arm_heartbeat();
}

void VnetAgent::arm_heartbeat() {
    hb_timer_.expires_after(std::chrono::milliseconds(heartbeat_ms_));  // cancels a wait under way
    hb_timer_.async_wait([this](relay::error_code ec) {
        if (!ec) heartbeat();
    });
}

// Version 6: the route's interval moved (HEARTBEAT rides behind the PONG to a PING of ours). The codec
// keeps it within 20 ms..60 s, WELCOME's floor; the silence limit in heartbeat() follows it.
void VnetAgent::moved_heartbeat(std::uint32_t ms) {
    heartbeat_ms_ = ms;
    route_log_.info("the route set the heartbeat interval to ", ms, " ms");
    arm_heartbeat();
}

void VnetAgent::send(const Frame& f) {
    if (connected_ && writer_) writer_->send(f);
}

void VnetAgent::on_frame(Frame f) {
    switch (f.type) {
        case MsgType::ping: return send(to_frame(Pong{from_frame<Ping>(f).token}));
        case MsgType::pong: {
            if (auto it = pings_.find(from_frame<Pong>(f).token); it != pings_.end()) {
                auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - it->second.first).count();
                auto fn = std::move(it->second.second);
                pings_.erase(it);
                char ms[32];  // "0.173", not std::to_string's "0.173000"
                std::snprintf(ms, sizeof ms, "%.3f", static_cast<double>(us) / 1000.0);
                fn(Reply{0, ms});
            }
            return;
        }
        case MsgType::heartbeat: return moved_heartbeat(from_frame<Heartbeat>(f).heartbeat_ms);
        case MsgType::serve_result: {
            auto m = from_frame<ServeResult>(f);
            auto it = serve_reqs_.find(m.req);
            if (it == serve_reqs_.end()) return;
            auto name = it->second;
            serve_reqs_.erase(it);
            auto* s = serve_by_name(name);
            if (!s) return;
            if (m.ok) {
                s->registered = true;
                s->id = m.id;
                s->set(ServeState::registered);
                refill_pools();
                if (s->unserve) unserve_timers_.add(m.id, static_cast<std::uint64_t>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count()));
                serve_log(name).info("registered as id ", m.id, m.message.empty() ? "" : " (" + m.message + ")");
            } else {
                s->set(ServeState::refused, m.message);
                serve_log(name).error("refused by the route: ", m.message);
            }
            if (auto w = waiting_.find(m.req); w != waiting_.end()) {
                auto fn = std::move(w->second);
                waiting_.erase(w);
                fn(f);
            }
            return;
        }
        case MsgType::serve_up: {
            auto m = from_frame<ServeUp>(f);
            available_[m.entry.spec.id] = m.entry;
            for (auto& u : uses_)
                if (u.cfg.active && u.cfg.id == m.entry.spec.id && !u.listening()) attach(u);
            return;
        }
        case MsgType::serve_down: {
            auto id = from_frame<ServeDown>(f).id;
            available_.erase(id);
            for (auto& u : uses_)
                if (u.cfg.id == id && u.listening()) detach(u, UseState::standby);
            return;
        }
        case MsgType::link_request: {
            auto m = from_frame<LinkRequest>(f);
            return serve_link(m.link_id, m.id, m.early);
        }
        case MsgType::unserve_ask: return on_unserve_ask(from_frame<UnserveAsk>(f));
        case MsgType::vnets:
        case MsgType::unserve_result: {
            Reader r(f.payload);
            auto req = r.u32();
            if (auto it = waiting_.find(req); it != waiting_.end()) {
                auto fn = std::move(it->second);
                waiting_.erase(it);
                fn(f);
            }
            return;
        }
        case MsgType::error: {
            auto e = from_frame<ErrorMsg>(f);
            return lost("route error: " + e.message);
        }
        default:
            throw WireError("unexpected " + std::string(type_name(f.type)) + " on the control connection");
    }
}

}  // namespace tn::vnet
