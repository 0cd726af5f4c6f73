// tn-route's HTTP side: the [http] vhost listener (requests routed by Host to a serve's custom_domains,
// the whole connection then relayed over one link) and the [dashboard] (page, /api/status, /metrics).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <sstream>

#include "base/error.hpp"
#include "base/strings.hpp"
#include "http_head.hpp"
#include "route_session.hpp"

namespace tn::route {

using namespace relay;

namespace {
// A client gets this long to send its request head (slowloris guard); how many may be at it at once,
// in all and per source address, is the head gates' business (vhosts and the dashboard apart).
constexpr auto kHeadTimeout = std::chrono::seconds(5);
constexpr std::size_t kReadChunk = 4096;
constexpr auto kLinger = std::chrono::seconds(2);
constexpr std::size_t kLingerBytes = 256 * 1024;

long long secs(Clock::duration d) { return std::chrono::duration_cast<std::chrono::seconds>(d).count(); }

// Prometheus label values escape backslash, double quote and newline.
std::string label(std::string_view v) {
    std::string o;
    for (char c : v) {
        if (c == '\\' || c == '"') o += '\\';
        if (c == '\n') {
            o += "\\n";
            continue;
        }
        o += c;
    }
    return o;
}

struct HeadState {
    explicit HeadState(asio::io_context& io) : timer(io) {}
    steady_timer timer;
    std::string buf;
    std::array<char, kReadChunk> chunk{};
    bool timed_out = false;
};
}  // namespace

std::shared_ptr<tcp::acceptor> RouteServer::listen_on(const HostPort& at, const char* what) {
    error_code ec;
    auto addr = asio::ip::make_address(at.host, ec);
    if (ec) throw Error(ExitCode::config, std::string(what) + " listen address '" + at.host + "' is not an IP address");
    auto a = std::make_shared<tcp::acceptor>(io_);
    tcp::endpoint ep(addr, at.port);
    a->open(ep.protocol(), ec);
    if (!ec) a->set_option(tcp::acceptor::reuse_address(true), ec);
    // Every client of these listeners speaks first (TLS ClientHello, the relay hello, an HTTP request):
    // the kernel hands a connection over only once its first bytes are in (or after a few seconds of
    // silence), so a real client is "speaking" when SetupGate judges it, however the accept and its
    // bytes race, and a silent flood waits in the kernel without holding a descriptor here.
    int defer_seconds = 1;
    if (!ec && ::setsockopt(a->native_handle(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_seconds, sizeof defer_seconds) != 0)
        ec = error_code(errno, boost::system::system_category());
    if (!ec) a->bind(ep, ec);
    if (!ec) a->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw Error(ExitCode::unavailable, std::string("cannot listen on ") + at.str() + " for " + what + ": " + ec.message());
    return a;
}

void RouteServer::apply_http_listeners(const RouteConfig& next) {
    auto update = [&](std::shared_ptr<TcpAcceptLoop>& loop, std::optional<HostPort>& at, const std::optional<HostPort>& want,
                      const char* what, const std::string& note, std::function<void(tcp::socket)> on_accept) {
        if (want == at) return;
        if (loop) {
            loop->stop();
            loop.reset();
            log_.info("stopped listening for ", what, " on ", at->str());
        }
        at.reset();
        if (!want) return;
        auto acc = listen_on(*want, what);
        at = want;
        log_.info("listening for ", what, " on ", want->str(), note);
        loop = accept_loop(acc, std::move(on_accept), std::string(what) + " on " + want->str());
    };
    update(http_loop_, http_at_, next.http_listen, "HTTP vhosts", "", [this](tcp::socket sock) { accept_http(std::move(sock), false); });
    update(tls_loop_, tls_at_, next.https_listen, "HTTPS vhosts", " (by SNI, relayed unopened)",
           [this](tcp::socket sock) { accept_tls(std::move(sock)); });
    update(dash_loop_, dash_at_, next.dashboard_listen, "the dashboard",
           next.dashboard_password.empty() ? " (no password: loopback only)" : " (basic auth)",
           [this](tcp::socket sock) { accept_http(std::move(sock), true); });
}

void RouteServer::accept_http(tcp::socket sock, bool dashboard) {
    if (stopped_) return;
    error_code e2;
    auto ep = sock.remote_endpoint(e2);
    if (e2) return;
    sock.set_option(tcp::no_delay(true), e2);
    read_head(std::make_shared<Stream>(std::move(sock)), peer_log(ep), source_key(ep.address()), dashboard);
}

void RouteServer::read_head(StreamPtr s, log::Context lg, const std::string& source, bool dashboard) {
    // The dashboard has its own gate: a flood of vhost clients never locks the operator out.
    auto slot = admit_client(dashboard ? dash_heads_ : heads_, s, source, lg, "HTTP clients are already sending their request heads");
    if (!slot) return;
    auto st = std::make_shared<HeadState>(io_);
    arm_first_bytes_deadline(st, s, kHeadTimeout);
    // Only the pending read owns the next step; the step sees itself through a weak_ptr. A step that
    // owned itself was never freed when a head was still arriving at shutdown (LeakSanitizer, 4 KiB a
    // client, the same cycle as TlsConn::async_read had).
    auto step = std::make_shared<std::function<void()>>();
    std::weak_ptr<std::function<void()>> self = step;
    *step = [this, s, st, lg, dashboard, self, slot]() {
        auto again = self.lock();
        if (!again) return;
        auto room = std::min(kReadChunk, http::kMaxHead - st->buf.size());  // parse() refuses before the cap is reached
        s->async_read_some(asio::buffer(st->chunk.data(), room), [this, s, st, lg, dashboard, again, slot](error_code ec, std::size_t n) {
            auto finish = [&]() { st->timer.cancel(); };
            if (stopped_) return finish();
            if (ec) {
                finish();
                if (st->timed_out) return http_reply(s, http::error_page(408, "the request head did not arrive in time"), 408, !dashboard);
                return s->close();
            }
            if (st->buf.empty()) {
                if (auto t = slot->table.lock()) t->gate.progressed(slot->id);
            }
            st->buf.append(st->chunk.data(), n);
            auto p = http::parse_request(st->buf);
            if (p.state == http::State::need_more) return (*again)();
            finish();
            if (p.state == http::State::bad) {
                lg.info(dashboard ? "dashboard" : "vhost", " request refused (", p.status, "): ", p.why);
                return http_reply(s, http::error_page(p.status, p.why), p.status, !dashboard);
            }
            if (dashboard) return on_dashboard(s, lg, p.req.method, p.req.path(), p.req.header("authorization"));
            on_vhost(s, lg, std::move(st->buf), p.req.head_size, p.req.header("host"));
        });
    };
    (*step)();
}

SetupPtr RouteServer::admit_client(const std::shared_ptr<SetupTable>& table, const StreamPtr& s, const std::string& source,
                                   const log::Context& lg, const char* what) {
    auto admit = table->gate.admit(source, Clock::now(), has_bytes(s->socket()));
    if (admit.evict) table->evict(*admit.evict);
    if (!admit.id) {
        ++table->refused;
        lg.debug("closed: ", table->gate.from(source), " ", what, " from that address");
        s->close();
        return nullptr;
    }
    auto slot = std::make_shared<Setup>(io_, table, *admit.id);
    table->live[*admit.id] = slot;
    slot->close = [w = std::weak_ptr<Stream>(s)]() {
        if (auto p = w.lock()) p->close();
    };
    return slot;
}

void RouteServer::on_vhost(StreamPtr s, const log::Context& lg, std::string buf, std::size_t, const std::string* host) {
    if (!host) return http_reply(s, http::error_page(400, "the request has no Host header"), 400, true);
    auto name = host_name(*host);
    const ServeRecord* r = reg_.find_by_host(*host);
    if (!r) {
        lg.info("vhost request for host '", name.substr(0, 253), "': no serve has that custom domain (404)");
        return http_reply(s, http::error_page(404, "no service is configured for host " + name.substr(0, 253)), 404, true);
    }
    lg.debug("vhost request for host '", name, "' -> serve ", r->spec.id, " (", r->spec.name, ")");
    // The head (and any body bytes that came with it) goes to the serve unchanged, ahead of the rest of
    // the connection: keep-alive requests that follow stay on this serve, whatever their Host says.
    request_link(s, r->group, r->spec.id, UserKind::http, lg, Bytes(buf.begin(), buf.end()));
}

void RouteServer::http_reply(const StreamPtr& s, std::string response, int status, bool vhost) {
    if (vhost) ++http_errors_[status];
    auto timer = std::make_shared<steady_timer>(io_, kLinger);
    async_write_bytes(s, Bytes(response.begin(), response.end()), [s, timer](error_code ec) {
        if (ec) return s->close();
        // A lingering close (as web servers do): closing with unread request bytes would send a reset
        // that can destroy the answer before the client reads it. So: FIN, then drain what the client
        // still sends (capped in bytes and time), then close.
        error_code e2;
        s->socket().shutdown(tcp::socket::shutdown_send, e2);
        timer->async_wait([s](error_code te) {
            if (!te) s->close();
        });
        auto buf = std::make_shared<std::array<char, kReadChunk>>();
        auto left = std::make_shared<std::size_t>(kLingerBytes);
        // As in read_head: only the pending read owns the next step (no cycle left at shutdown).
        auto drain = std::make_shared<std::function<void()>>();
        std::weak_ptr<std::function<void()>> self = drain;
        *drain = [s, buf, left, self, timer]() {
            auto again = self.lock();
            if (!again) return;
            s->async_read_some(asio::buffer(*buf), [s, buf, left, again, timer](error_code re, std::size_t n) {
                if (re || n >= *left) {
                    timer->cancel();
                    return s->close();
                }
                *left -= n;
                (*again)();
            });
        };
        (*drain)();
    });
}

void RouteServer::on_dashboard(StreamPtr s, const log::Context& lg, const std::string& method, const std::string& path,
                               const std::string* authorization) {
    if (!cfg_.dashboard_password.empty() &&
        !http::basic_auth_ok(authorization, cfg_.dashboard_user, cfg_.dashboard_password.expose())) {
        lg.info("dashboard request without valid credentials (401)");
        return http_reply(s, http::response(401, "text/plain; charset=utf-8", "authentication required\n",
                                            {"WWW-Authenticate: Basic realm=\"tn-route\", charset=\"UTF-8\""}),
                          401, false);
    }
    if (method != "GET" && method != "HEAD")
        return http_reply(s, http::response(405, "text/plain; charset=utf-8", "only GET and HEAD\n", {"Allow: GET, HEAD"}), 405, false);
    bool head = method == "HEAD";
    if (path == "/" || path == "/index.html")
        return http_reply(s, http::response(200, "text/html; charset=utf-8", dashboard_html(), {}, head), 200, false);
    if (path == "/api/status")
        return http_reply(s, http::response(200, "application/json", status(true), {}, head), 200, false);
    if (path == "/metrics")
        return http_reply(s, http::response(200, "text/plain; version=0.0.4; charset=utf-8", metrics(), {}, head), 200, false);
    http_reply(s, http::response(404, "text/plain; charset=utf-8", "not found: / /api/status /metrics\n", {}, head), 404, false);
}

std::string RouteServer::metrics() const {
    std::ostringstream o;
    auto now = Clock::now();
    auto metric = [&](const char* name, const char* type, const char* help) {
        o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
    };
    std::uint64_t live = 0;
    for (const auto& [id, a] : active_) live += a.bytes();
    metric("tn_route_uptime_seconds", "gauge", "Seconds since this tn-route started.");
    o << "tn_route_uptime_seconds " << secs(now - started_) << "\n";
    std::map<std::string, std::pair<std::size_t, std::size_t>> groups;  // group -> vnets, serves
    for (const auto& g : cfg_.groups) groups[g.name];
    for (const auto& [id, ss] : sessions_) ++groups[ss->group].first;
    for (auto& [g, n] : groups) n.second = reg_.serves(g).size();
    metric("tn_route_vnets", "gauge", "Connected vnets, by group.");
    for (const auto& [g, n] : groups) o << "tn_route_vnets{group=\"" << label(g) << "\"} " << n.first << "\n";
    metric("tn_route_serves", "gauge", "Registered serves, by group.");
    for (const auto& [g, n] : groups) o << "tn_route_serves{group=\"" << label(g) << "\"} " << n.second << "\n";
    metric("tn_route_links_active", "gauge", "Proxied connections relayed now.");
    o << "tn_route_links_active " << active_.size() << "\n";
    metric("tn_route_links_pending", "gauge", "Links waiting for the serving vnet.");
    o << "tn_route_links_pending " << links_.pending_count() << "\n";
    metric("tn_route_links_total", "counter", "Proxied connections bound since start.");
    o << "tn_route_links_total " << links_total_ << "\n";
    metric("tn_route_relayed_bytes_total", "counter", "Bytes relayed, both directions, since start (links between two vnets: records as they travel).");
    o << "tn_route_relayed_bytes_total " << bytes_total_ + live << "\n";
    metric("tn_route_remote_ports", "gauge", "remote_port listeners open.");
    o << "tn_route_remote_ports " << remotes_.size() << "\n";
    metric("tn_route_vhost_links_total", "counter", "HTTP vhost connections relayed to a serve since start.");
    o << "tn_route_vhost_links_total " << vhost_links_ << "\n";
    metric("tn_route_vhost_errors_total", "counter", "HTTP vhost requests the route answered itself, by status.");
    for (int code : {400, 404, 408, 431, 502, 503, 504}) {
        auto it = http_errors_.find(code);
        o << "tn_route_vhost_errors_total{code=\"" << code << "\"} " << (it == http_errors_.end() ? 0 : it->second) << "\n";
    }
    metric("tn_route_tls_vhost_links_total", "counter", "HTTPS vhost connections relayed unopened to a serve since start.");
    o << "tn_route_tls_vhost_links_total " << tls_links_ << "\n";
    metric("tn_route_tls_vhost_refused_total", "counter", "HTTPS vhost clients refused with a TLS alert, by reason.");
    for (const char* r : kTlsRefusals) {
        auto it = tls_errors_.find(r);
        o << "tn_route_tls_vhost_refused_total{reason=\"" << r << "\"} " << (it == tls_errors_.end() ? 0 : it->second) << "\n";
    }
    return o.str();
}

std::string RouteServer::dashboard_html() const {
    using http::html_escape;
    std::ostringstream o;
    auto now = Clock::now();
    std::uint64_t live = 0;
    for (const auto& [id, a] : active_) live += a.bytes();
    o << "<!doctype html>\n<html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\">"
         "<title>tn-route " << html_escape(cfg_.listen.str()) << "</title><style>"
         "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}"
         "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#eee}</style></head><body>\n"
      << "<h1>tn-route</h1>\n<p>listen " << html_escape(cfg_.listen.str()) << " &middot; "
      << (cfg_.tls ? "TLS " + html_escape(fingerprint_) : std::string("plain TCP")) << " &middot; up " << secs(now - started_)
      << " s</p>\n<table><tr><th>links active</th><th>pending</th><th>total</th><th>bytes relayed</th><th>vhost links</th></tr><tr><td>"
      << active_.size() << "</td><td>" << links_.pending_count() << "</td><td>" << links_total_ << "</td><td>" << bytes_total_ + live
      << "</td><td>" << vhost_links_ << "</td></tr></table>\n";
    o << "<h2>vnets (" << sessions_.size() << ")</h2>\n<table><tr><th>id</th><th>name</th><th>group</th><th>from</th><th>up (s)</th></tr>\n";
    for (const auto& [id, ss] : sessions_)
        o << "<tr><td>" << id << "</td><td>" << html_escape(ss->name) << "</td><td>" << html_escape(ss->group) << "</td><td>"
          << html_escape(ss->peer) << "</td><td>" << secs(now - ss->since) << "</td></tr>\n";
    o << "</table>\n<h2>serves</h2>\n<table><tr><th>group</th><th>id</th><th>name</th><th>vnet</th><th>target</th>"
         "<th>remote_port</th><th>custom domains</th><th>info</th></tr>\n";
    for (const auto& g : reg_.groups())
        for (const auto& r : reg_.serves(g)) {
            std::string domains;
            for (const auto& d : r.spec.domains) domains += (domains.empty() ? "" : " ") + d;
            o << "<tr><td>" << html_escape(g) << "</td><td>" << r.spec.id << "</td><td>" << html_escape(r.spec.name) << "</td><td>"
              << r.vnet_id << " " << html_escape(r.vnet_name) << "</td><td>" << html_escape(r.spec.ip) << ":" << r.spec.port
              << "</td><td>" << (r.spec.remote_port ? std::to_string(r.spec.remote_port) : "") << "</td><td>"
              << html_escape(domains) << "</td><td>" << html_escape(r.spec.info) << "</td></tr>\n";
        }
    o << "</table>\n<p><a href=\"/api/status\">/api/status</a> &middot; <a href=\"/metrics\">/metrics</a></p>\n</body></html>\n";
    return o.str();
}

}  // namespace tn::route
