// The client event loop: handshake, apply the pushed settings to the TUN, hooks, keepalives,
// re-resolving the server's name when handshakes go unanswered, and a clean teardown.
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.hpp"
#include "base/runtime_dir.hpp"
#include "base/signals.hpp"
#include "control.hpp"
#include "datapath.hpp"
#include "host_dns.hpp"
#include "host_routes.hpp"
#include "runner.hpp"

namespace tn::tuntool {
namespace {

// Unanswered handshakes before the server's name is resolved again (PROTOCOL.tun.md §6).
constexpr unsigned resolve_after_failures = 3;

std::optional<std::uint32_t> server_ipv4(const tun::Endpoint& e) {
    if (e.sa.ss_family != AF_INET) return std::nullopt;
    return ntohl(reinterpret_cast<const sockaddr_in*>(&e.sa)->sin_addr.s_addr);
}

std::map<std::string, std::string> hook_env(const ClientOptions& o, const tun::PushConfig& p) {
    std::string dns, routes;
    for (auto d : p.dns) dns += (dns.empty() ? "" : " ") + tun::ipv4_str(d);
    for (auto& r : p.routes) routes += (routes.empty() ? "" : " ") + tun::cidr_str(r);
    return {{"TN_TUN_INTERFACE", o.tun},        {"TN_TUN_ADDRESS", tun::ipv4_str(p.address)},
            {"TN_TUN_PREFIX", std::to_string(p.prefix)}, {"TN_TUN_MTU", std::to_string(p.mtu)},
            {"TN_TUN_DNS", dns},                {"TN_TUN_ROUTES", routes},
            {"TN_TUN_SERVER", o.server}};
}

void run_hook(const std::string& hook, const char* which, const std::map<std::string, std::string>& env,
              const log::Logger& log) {
    if (hook.empty()) return;
    int rc = run_program({"/bin/sh", "-c", hook}, env);
    if (rc != 0) log.warn(which, " hook exited with status ", rc, ", ignoring");
}

// The routes to add: the pushed ones, plus the default route when the client asks for a full tunnel
// itself (added as the two halves, like a pushed one: tn-tun(1), "Routes").
std::vector<tun::Route> wanted_routes(const ClientOptions& o, const tun::PushConfig& p) {
    auto r = p.routes;
    if (o.default_route) r.push_back(tun::Route{0, 0});
    return r;
}

}  // namespace

int run_client(const ClientOptions& given, const log::Logger& log) {
    ClientOptions o = given;  // SIGHUP replaces parts of it
    // Keyed by the network namespace too: clients in two namespaces may both call their TUN tnc0.
    std::string instance = "tn-tun-client-" + netns_id() + "-" + o.tun;
    auto lock = FileLock::try_acquire(ensure_state_dir() / (instance + ".lock"));
    if (!lock) throw Error(ExitCode::temp_fail, "another tn-tun client already runs on " + o.tun + " in this network namespace");
    SignalFd signals;
    tun::Endpoint server = resolve(o.server);
    tun::ClientCore core(o.core);
    bool offload = offload_wanted();
    TunDevice tun(o.tun, offload);
    HostRoutes routes(ensure_state_dir() / (instance + ".routes"), log);  // after tun: removed before it goes
    HostDns dns(ensure_state_dir() / (instance + ".dns"), "/etc/resolv.conf", log);
    UdpSocket udp("", server.sa.ss_family, offload);
    TunReader reader(tun);
    TunWriter writer(tun);
    ControlServer control(client_control_socket_path(o.tun));
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    UniqueFd ep_owner(ep);
    for (int fd : {udp.fd(), tun.fd(), signals.fd(), control.fd()}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    log.info("client starting server=", o.server, " (", server.str(), ") tun=", tun.name(), " offload=",
             tun.offload() ? (tun.uso() ? "tun+uso" : "tun") : "off", udp.gso() ? ",gso" : "", udp.gro() ? ",gro" : "");

    std::optional<tun::PushConfig> applied;
    std::optional<std::chrono::system_clock::time_point> last_handshake;
    auto status = [&](bool json) {
        ClientStatus st{o.tun, o.server, server.str(), core.connected(), applied, last_handshake, core.stats(), {}};
        for (auto& r : routes.added()) st.routes.push_back(r.str());
        return render_client_status(st, json);
    };
    unsigned resolved_at_failures = 0;
    auto apply = [&](const tun::PushConfig& p) {
        if (applied) run_hook(o.on_down, "on_down", hook_env(o, *applied), log);
        tun.configure(p.address, p.prefix, p.mtu);
        if (o.apply_routes) routes.apply(wanted_routes(o, p), tun.name(), server_ipv4(server));
        else routes.clear();
        if (o.apply_dns) dns.apply(tun.name(), p.dns);
        applied = p;
        std::string routes;
        for (auto& r : p.routes) routes += (routes.empty() ? "" : ",") + tun::cidr_str(r);
        log.info("connected address=", tun::ipv4_str(p.address), "/", int(p.prefix), " mtu=", p.mtu,
                 " routes=", routes.empty() ? "-" : routes);
        run_hook(o.on_up, "on_up", hook_env(o, p), log);
    };
    auto teardown = [&] {
        if (applied) run_hook(o.on_down, "on_down", hook_env(o, *applied), log);
        routes.clear();
        dns.clear();
    };
    auto handle = [&](const tun::ClientActions& a) {
        writer.add(a.to_tun);
        if (a.established) last_handshake = std::chrono::system_clock::now();
        if (a.cookie) log.info("server under load: got a cookie, retrying the handshake with it");
        if (!a.send.empty()) udp.queue(a.send, server);
        // After a re-handshake the server pushes again; unchanged settings stay as they are, so the
        // address never disappears from under running connections.
        if (a.pushed && core.push() && (!applied || *applied != *core.push())) apply(*core.push());
    };

    // SIGHUP: hooks, apply_routes, keepalive and the server's address apply now (the session goes
    // on); keys and the TUN name need a restart. A broken file changes nothing.
    auto reload = [&] {
        ClientOptions fresh;
        try {
            fresh = load_client(o.config_file);
        } catch (const Error& e) {
            log.error("reload failed, the running config stays: ", e.what());
            return;
        }
        std::string later;
        if (fresh.core.key.priv != o.core.key.priv) later += " private_key_file";
        if (fresh.core.server_public != o.core.server_public) later += " server_public_key";
        if (fresh.tun != o.tun) later += " tun";
        if (fresh.server != o.server) {
            try {
                server = resolve(fresh.server);
                o.server = fresh.server;
                if (applied && o.apply_routes && fresh.apply_routes)
                    routes.apply(wanted_routes(o, *applied), tun.name(), server_ipv4(server));  // the host route follows
            } catch (const Error& e) {
                log.warn(e.what(), "; keeping ", o.server);
            }
        }
        if (applied && (fresh.apply_routes != o.apply_routes || fresh.default_route != o.default_route)) {
            if (fresh.apply_routes) routes.apply(wanted_routes(fresh, *applied), tun.name(), server_ipv4(server));
            else routes.clear();
        }
        if (applied && fresh.apply_dns != o.apply_dns) {
            if (fresh.apply_dns) dns.apply(tun.name(), applied->dns);
            else dns.clear();
        }
        o.apply_dns = fresh.apply_dns;
        o.apply_routes = fresh.apply_routes;
        o.default_route = fresh.default_route;
        o.on_up = fresh.on_up;
        o.on_down = fresh.on_down;
        o.core.keepalive = fresh.core.keepalive;
        core.set_keepalive(fresh.core.keepalive);
        log.info("reloaded ", o.config_file.string(), ": server=", o.server, " apply_routes=", o.apply_routes,
                 " default_route=", o.default_route, " apply_dns=", o.apply_dns,
                 " persistent_keepalive=", o.core.keepalive.count());
        if (!later.empty()) log.warn("changed but applied only at the next start:", later);
    };

    std::uint8_t timer_buf[tun::max_datagram_len + 64];
    epoll_event evs[8];
    try {
        for (;;) {
            auto now = tun::Clock::now();
            handle(core.tick(now, std::chrono::system_clock::now(), timer_buf));
            writer.flush();
            udp.flush();
            unsigned failed = core.failed_attempts();
            if (failed >= resolve_after_failures && failed / resolve_after_failures != resolved_at_failures) {
                // The server may have moved (a dynamic DNS name): look it up again.
                resolved_at_failures = failed / resolve_after_failures;
                try {
                    auto fresh = resolve(o.server);
                    if (!(fresh == server)) log.info("server ", o.server, " now resolves to ", fresh.str());
                    server = fresh;
                } catch (const Error& e) {
                    log.warn(e.what(), "; keeping ", server.str());
                }
                try {
                    // The server may have moved, or we did (another network took the host route to
                    // the server with it): the routes follow either.
                    if (applied && o.apply_routes) routes.apply(wanted_routes(o, *applied), tun.name(), server_ipv4(server));
                } catch (const Error& e) {
                    log.warn("cannot update the routes: ", e.what());
                }
                log.warn("no answer from the server after ", failed, " handshakes; still trying");
            }
            if (failed == 0) resolved_at_failures = 0;
            auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(core.next_deadline(now) - now).count();
            int n = ::epoll_wait(ep, evs, 8, static_cast<int>(std::clamp<long long>(wait + 1, 0, 60000)));
            for (int e = 0; e < n; ++e) {
                int fd = evs[e].data.fd;
                now = tun::Clock::now();
                if (fd == signals.fd()) {
                    while (auto s = signals.take()) {
                        if (*s == SIGHUP) {
                            reload();
                            continue;
                        }
                        log.info("stopping on ", strsignal(*s));
                        teardown();
                        return 0;
                    }
                } else if (fd == udp.fd()) {
                    for (int r = 0; r < 8; ++r) {
                        std::size_t got = udp.receive();
                        for (std::size_t i = 0; i < got; ++i) {
                            std::uint8_t* scratch = udp.scratch();
                            auto a = core.on_datagram(udp.rx(i), udp.rx_len(i), now, scratch);
                            bool used = a.send.data() == scratch;
                            handle(a);
                            if (used) udp.take_scratch();
                        }
                        writer.flush();  // before the next receive() reuses the buffers
                        udp.flush();
                        if (udp.drained()) break;  // one syscall saved per wakeup: they cost ~1 us here
                    }
                } else if (fd == control.fd()) {
                    control.serve_one(status);
                } else if (fd == tun.fd()) {
                    reader.pump(udp, 64, [&](std::uint8_t* slot, std::size_t len) { handle(core.on_tun(slot, len, now)); });
                }
            }
        }
    } catch (...) {
        teardown();
        throw;
    }
}

}  // namespace tn::tuntool
