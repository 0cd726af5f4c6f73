// tn-route's HTTP side: the [http] vhost listener (requests routed by Host to a serve's custom_domains,
// the whole connection then relayed over one link) and the [dashboard]'s requests (its pages are
// route_pages.cpp's).
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

}  // namespace tn::route
