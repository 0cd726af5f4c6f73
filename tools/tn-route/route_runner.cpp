// Runs tn-route: certificate, single-instance lock, the event loop and its signals; status client.
#include "route_runner.hpp"

#include <csignal>
#include <cstdlib>

#include "base/error.hpp"
#include "base/runtime_dir.hpp"
#include "base/secret.hpp"
#include "relay/io_control.hpp"
#include "relay/io_tls.hpp"
#include "relay/time_scale.hpp"
#include "route_server.hpp"
#include "relay/io_sd_watchdog.hpp"

namespace tn::route {

namespace asio = relay::asio;

int print_fingerprint(const RouteConfig& cfg, const log::Logger& log, std::ostream& out) {
    if (cfg.source.empty()) ensure_persistent_dir();  // where the default certificate lives
    if (relay::ensure_certificate(cfg.cert, cfg.key)) log.info("generated a self-signed certificate ", cfg.cert.string());
    out << relay::cert_fingerprint(cfg.cert) << "\n";
    return 0;
}

namespace {
// As ssh does for a key: say so (once per start or reload) when the group tokens or the TLS key can
// be read by other users. A warning, not a refusal: the operator may share a group on purpose.
void warn_unprotected_secrets(const RouteConfig& cfg, const log::Logger& log, bool key_too = true) {
    if (!cfg.source.empty())
        if (auto w = secret_file_warning(cfg.source)) log.warn(*w, " (it has the group tokens)");
    if (cfg.tls && key_too)
        if (auto w = secret_file_warning(cfg.key)) log.warn(*w, " (the TLS private key)");
}
}  // namespace

int run_route(RouteConfig cfg, const log::Logger& log) {
    double scale = relay::time_scale_from_env();
    // Its lock and control socket live there: a directory another user can write to or enter is
    // refused (78) before anything is created in it.
    require_private_dir(ensure_state_dir());
    if (cfg.source.empty()) ensure_persistent_dir();  // where the default certificate lives
    auto lock_path = state_dir_path() / ("tn-route-" + std::to_string(cfg.listen.port) + ".lock");
    auto lock = FileLock::try_acquire(lock_path);
    if (!lock) throw Error(ExitCode::temp_fail, "another tn-route already runs for port " + std::to_string(cfg.listen.port) +
                                                    " (" + lock_path.string() + " is locked)");
    std::string fp;
    if (cfg.tls) {
        if (relay::ensure_certificate(cfg.cert, cfg.key))
            log.info("generated a self-signed certificate ", cfg.cert.string(), " (key ", cfg.key.string(), ")");
        fp = relay::cert_fingerprint(cfg.cert);
        log.info("certificate fingerprint ", fp, " (put it in each vnet's [route] fingerprint)");
    }
    if (cfg.groups.empty()) log.warn("no [[group]] configured: every vnet will be refused");
    warn_unprotected_secrets(cfg, log);
    // The TLS control connection writes through OpenSSL's socket BIO (plain write(2), no
    // MSG_NOSIGNAL): a peer that closed would otherwise kill the process with SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);
    relay::keep_freed_buffers();
    asio::io_context io(1);  // one event-loop thread, fixed: no thread per connection
    // Signals are taken before the listeners open: a SIGHUP sent as soon as the port answers would
    // otherwise find the default action and end the route. Asio queues them until the wait below.
    asio::signal_set sigs(io, SIGINT, SIGTERM, SIGHUP);
    RouteServer server(io, cfg, log, scale);
    server.start(fp);
    std::function<void()> wait_signal = [&]() {
        sigs.async_wait([&](relay::error_code ec, int sig) {
            if (ec) return;
            if (sig == SIGHUP) {
                try {
                    auto next = load_route_config(cfg.source);
                    warn_unprotected_secrets(next, log, false);  // the key is read at start only
                    auto groups = next.groups.size();
                    auto restart = server.reload(std::move(next));
                    std::string note;
                    for (const auto& r : restart) note += (note.empty() ? "" : ", ") + r;
                    log.info("reloaded ", cfg.source, ": ", groups, " groups, [http] and [dashboard] applied",
                             note.empty() ? "" : "; changed but needs a restart: " + note);
                } catch (const Error& e) {
                    log.error("reload: ", e.what());
                }
                return wait_signal();
            }
            log.info("stopping on signal ", sig);
            server.stop();
            io.stop();
        });
    };
    wait_signal();
    // Type=notify: the listeners are bound and SIGTERM is handled, so systemd may stop us at once.
    sd::notify_ready(), sd::keep_watchdog(io);
    io.run();
    return 0;
}

int print_status(const RouteConfig& cfg, bool json, std::ostream& out, StatusPage page) {
    std::vector<std::string> ask{"status"};
    if (json) ask.emplace_back("json");
    if (json && page.limit) ask.insert(ask.end(), {std::to_string(page.limit), std::to_string(page.after)});
    auto r = control_ask(route_socket_path(cfg.listen.port), ask, "no tn-route running for port " + std::to_string(cfg.listen.port));
    if (r.code != 0) throw Error(ExitCode::unavailable, r.body);
    out << r.body;
    return 0;
}

}  // namespace tn::route
