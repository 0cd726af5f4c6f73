// The client event loop: handshake, apply the pushed settings to the TUN, hooks, keepalives,
// re-resolving the server's name when handshakes go unanswered, and a clean teardown.
#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/epoll.hpp"
#include "base/error.hpp"
#include "base/runtime_dir.hpp"
#include "base/signals.hpp"
#include "base/strings.hpp"
#include "control.hpp"
#include "datapath.hpp"
#include "host_dns.hpp"
#include "host_routes.hpp"
#include "runner.hpp"
#include "base/sd_notify.hpp"

namespace tn::tuntool {
namespace {

// Unanswered handshakes before the server's name is resolved again (PROTOCOL.tun.md §6).
constexpr unsigned resolve_after_failures = 3;
// Packets one TUN turn may seal: 64 reads of a full TSO super-packet, as many as when the turn was
// counted in reads (one client has no other peers to be fair to).
constexpr std::size_t client_tun_packets = 64 * UdpSocket::max_gso_segments;

std::optional<std::uint32_t> server_ipv4(const tun::Endpoint& e) {
    if (e.sa.ss_family != AF_INET) return std::nullopt;
    return ntohl(reinterpret_cast<const sockaddr_in*>(&e.sa)->sin_addr.s_addr);
}

// The server's IPv6 address when that is what we reach it at (not an IPv4-mapped one, which the
// kernel routes as IPv4).
std::optional<tun::Ip6> server_ipv6(const tun::Endpoint& e) {
    if (e.sa.ss_family != AF_INET6) return std::nullopt;
    auto* a = reinterpret_cast<const sockaddr_in6*>(&e.sa);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) return std::nullopt;
    tun::Ip6 ip;
    std::memcpy(ip.data(), &a->sin6_addr, 16);
    return ip;
}

// The pushed DNS servers of both families, as text.
std::vector<std::string> dns_servers(const tun::PushConfig& p) {
    std::vector<std::string> out;
    for (auto d : p.dns) out.push_back(tun::ipv4_str(d));
    for (auto& d : p.dns6) out.push_back(tun::ipv6_str(d));
    return out;
}

std::map<std::string, std::string> hook_env(const ClientOptions& o, const tun::PushConfig& p) {
    std::string dns, routes, dns6, routes6;
    for (auto d : p.dns) dns += (dns.empty() ? "" : " ") + tun::ipv4_str(d);
    for (auto& r : p.routes) routes += (routes.empty() ? "" : " ") + tun::cidr_str(r);
    for (auto& d : p.dns6) dns6 += (dns6.empty() ? "" : " ") + tun::ipv6_str(d);
    for (auto& r : p.routes6) routes6 += (routes6.empty() ? "" : " ") + tun::cidr_str(r);
    std::map<std::string, std::string> env{
        {"TN_TUN_INTERFACE", o.tun}, {"TN_TUN_ADDRESS", tun::ipv4_str(p.address)}, {"TN_TUN_PREFIX", std::to_string(p.prefix)},
        {"TN_TUN_MTU", std::to_string(p.mtu)}, {"TN_TUN_DNS", dns}, {"TN_TUN_ROUTES", routes}, {"TN_TUN_SERVER", o.server}};
    if (p.has_v6())
        env.insert({{"TN_TUN_ADDRESS6", tun::ipv6_str(p.address6)}, {"TN_TUN_PREFIX6", std::to_string(p.prefix6)},
                    {"TN_TUN_DNS6", dns6}, {"TN_TUN_ROUTES6", routes6}});
    return env;
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

// The same for IPv6: with an IPv6 address pushed, the full tunnel takes IPv6 too (else it would
// leave by the host's own route, around the tunnel).
std::vector<tun::Route6> wanted_routes6(const ClientOptions& o, const tun::PushConfig& p) {
    auto r = p.routes6;
    if (o.default_route && p.has_v6()) r.push_back(tun::Route6{});
    return r;
}

// The client's state and event loop; the host changes it made (routes, DNS, TUN) are members, so
// they are undone in reverse order however the loop ends.
class ClientRunner {
public:
    ClientRunner(const ClientOptions& given, const std::string& instance, const log::Logger& log, SignalFd& signals)
        : o_(given), log_(log), signals_(signals), server_(resolve(o_.server)), core_(o_.core),
          offload_(offload_wanted()), tun_(o_.tun, offload_),
          routes_(ensure_state_dir() / (instance + ".routes"), log),  // after tun_: removed before it goes
          dns_(ensure_state_dir() / (instance + ".dns"), "/etc/resolv.conf", log),
          udp_("", server_.sa.ss_family, offload_), reader_(tun_), writer_(tun_),
          control_(client_control_socket_path(o_.tun)) {
        for (int fd : {udp_.fd(), tun_.fd(), signals_.fd(), control_.fd()}) ep_.add(fd);
        if (o_.fwmark && udp_.set_mark(o_.fwmark)) mark_ = o_.fwmark;
        else if (o_.fwmark) log.warn("cannot mark the tunnel's datagrams (SO_MARK: ", std::strerror(errno),
                                     "); a full tunnel goes by 0.0.0.0/1 + 128.0.0.0/1");
        log.info("client starting server=", o_.server, " (", server_.str(), ") tun=", tun_.name(), " offload=",
                 tun_.offload() ? (tun_.uso() ? "tun+uso" : "tun") : "off", udp_.gso() ? ",gso" : "",
                 udp_.gro() ? ",gro" : "");
        sd::notify_ready();  // Type=notify: the TUN device is up; the handshake follows whenever the server answers
    }

    // Runs until SIGINT/SIGTERM (0); undoes what it applied on every way out.
    int run() {
        try {
            for (;;) {
                auto now = tun::Clock::now();
                handle(core_.tick(now, std::chrono::system_clock::now(), timer_buf_));
                writer_.flush();
                udp_.flush();
                follow_server();
                for (const epoll_event& ev : ep_.wait(ms_until(core_.next_deadline(), now))) {
                    if (!on_ready(ev.data.fd, tun::Clock::now())) {
                        teardown();
                        return 0;
                    }
                }
            }
        } catch (...) {
            teardown();
            throw;
        }
    }

private:
    // False when a signal says stop.
    bool on_ready(int fd, tun::TimePoint now) {
        if (fd == signals_.fd()) {
            while (auto s = signals_.take()) {
                if (*s == SIGHUP) {
                    reload();
                    continue;
                }
                log_.info("stopping on ", strsignal(*s));
                return false;
            }
        } else if (fd == udp_.fd()) {
            on_udp(now);
        } else if (fd == control_.fd()) {
            control_.serve_one([this](std::string_view req) { return ControlReply{0, status(req.rfind("json", 0) == 0)}; });
        } else if (fd == tun_.fd()) {
            reader_.pump(udp_, client_tun_packets, [&](std::uint8_t* slot, std::size_t len) { handle(core_.on_tun(slot, len, now)); });
        }
        return true;
    }

    void on_udp(tun::TimePoint now) {
        for (int r = 0; r < 8; ++r) {
            std::size_t got = udp_.receive();
            for (std::size_t i = 0; i < got; ++i) {
                std::uint8_t* scratch = udp_.scratch();
                auto a = core_.on_datagram(udp_.rx(i), udp_.rx_len(i), now, scratch);
                bool used = a.send.data() == scratch;
                handle(a);
                if (used) udp_.take_scratch();
            }
            writer_.flush();  // before the next receive() reuses the buffers
            udp_.flush();
            if (udp_.drained()) break;  // one syscall saved per wakeup: they cost ~1 us here
        }
    }

    std::string status(bool json) const {
        ClientStatus st{o_.tun, o_.server, server_.str(), core_.connected(), applied_, last_handshake_, core_.stats(), {}, {}};
        if (auto* kp = core_.current_keypair()) st.suite = kp->suite;
        for (auto& r : routes_.added()) st.routes.push_back(r.str());
        for (auto& r : routes6_.added()) st.routes.push_back(tun::cidr_str(r) + " dev " + tun_.name());
        for (auto& s : routes_.policy()) st.routes.push_back(s.str());
        return render_client_status(st, json);
    }

    void handle(const tun::ClientActions& a) {
        writer_.add(a.to_tun);
        if (a.established) last_handshake_ = std::chrono::system_clock::now();
        if (a.cookie) log_.info("server under load: got a cookie, retrying the handshake with it");
        if (!a.send.empty()) udp_.queue(a.send, server_);
        // After a re-handshake the server pushes again; unchanged settings stay as they are, so the
        // address never disappears from under running connections.
        if (a.pushed && core_.push() && (!applied_ || *applied_ != *core_.push())) apply(*core_.push());
    }

    void apply(const tun::PushConfig& p) {
        refuse_clashes(p, o_);
        if (applied_) run_hook(o_.on_down, "on_down", hook_env(o_, *applied_), log_);
        tun_.configure(p.address, p.prefix, p.mtu);
        tun_.configure6(p.has_v6() ? std::optional(p.address6) : std::nullopt, p.prefix6);
        apply_routes(p, o_);
        if (o_.apply_dns) dns_.apply(tun_.name(), dns_servers(p));
        applied_ = p;
        std::string list;
        for (auto& r : p.routes) list += (list.empty() ? "" : ",") + tun::cidr_str(r);
        for (auto& r : p.routes6) list += (list.empty() ? "" : ",") + tun::cidr_str(r);
        log_.info("connected address=", tun::ipv4_str(p.address), "/", int(p.prefix),
                  p.has_v6() ? " address6=" + tun::ipv6_str(p.address6) + "/" + std::to_string(p.prefix6) : "",
                  " mtu=", p.mtu, " routes=", list.empty() ? "-" : list);
        run_hook(o_.on_up, "on_up", hook_env(o_, p), log_);
    }

    // What a push must not do to this host, refused before anything of it touches the host
    // (tn-tun(1), "IPv6"): an IPv6 route that covers the server's own IPv6 address would loop the
    // tunnel's datagrams (no host route is pinned for IPv6), and an IPv6 subnet this host already
    // routes elsewhere would cut it off from that network. Config errors on the server's side (78).
    void refuse_clashes(const tun::PushConfig& p, const ClientOptions& o) {
        if (!p.has_v6()) return;
        auto server6 = server_ipv6(server_);
        if (o.apply_routes && server6) {
            // With policy routing a pushed ::/0 goes to our table, which the marked datagrams skip.
            auto routes6 = p.routes6;
            if (mark_) std::erase_if(routes6, [](const tun::Route6& r) { return r.prefix == 0; });
            if (auto r = tun::covering_route6(routes6, *server6))
                throw Error(ExitCode::config, "the server pushes the IPv6 route " + tun::cidr_str(*r) + ", which covers its own address " +
                                                  tun::ipv6_str(*server6) + ": the tunnel would carry itself; change its routes or reach it over IPv4");
            if (o.default_route && !mark_)
                throw Error(ExitCode::config, "default_route = true would send all IPv6 through the tunnel, the server's own address " +
                                                  tun::ipv6_str(*server6) + " included: reach the server over IPv4 (or run it without subnet6)");
        }
        tun::Route6 subnet6{p.address6, p.prefix6};
        subnet6 = tun::parse_cidr6(tun::cidr_str(subnet6));  // the network, host bits cleared
        std::string table;
        if (run_program_output({"ip", "-6", "-o", "route", "show"}, table) != 0) return;
        if (auto line = tun::overlapping_route6(table, subnet6, tun_.name()))
            throw Error(ExitCode::config, "the server's IPv6 subnet " + tun::cidr_str(subnet6) + " overlaps a network this host already routes (" +
                                              std::string(trim(*line)) + "): the server needs another subnet6");
    }

    // The pushed routes of both families, as `o` says (apply_routes, default_route).
    void apply_routes(const tun::PushConfig& p, const ClientOptions& o) {
        if (!o.apply_routes) {
            routes_.clear();
            routes6_.clear();
            return;
        }
        auto r4 = wanted_routes(o, p);
        auto r6 = wanted_routes6(o, p);
        auto is_default = [](const auto& r) { return r.prefix == 0; };
        bool full4 = std::any_of(r4.begin(), r4.end(), is_default), full6 = std::any_of(r6.begin(), r6.end(), is_default);
        auto server4 = server_ipv4(server_);
        bool pol4 = mark_ && full4, pol6 = mark_ && full6;
        if (pol4 && server4 && routes_.strict_rp_filter(*server4, mark_)) {
            pol4 = false;
            log_.warn("strict rp_filter on the way to the server: the IPv4 full tunnel goes by halves (tn-tun(1), \"Routes\")");
        }
        if ((pol4 || pol6) && !routes_.apply_policy(tun_.name(), mark_, pol4, pol6)) pol4 = pol6 = false;
        if (!pol4 && !pol6) routes_.clear_policy();
        policy4_ = pol4;
        if (pol6 || server_ipv6(server_)) {
            // By policy: the default routes are in our table. By halves with an IPv6 server: ::/0
            // would carry the tunnel itself (no host route is pinned for IPv6), so IPv6 stays out.
            if (!pol6 && full6) log_.error("the IPv6 full tunnel is left out: without policy routing it would carry the tunnel itself");
            std::erase_if(r6, is_default);
        }
        routes_.apply(v4_routes(o, p), tun_.name(), server4);
        routes6_.apply(r6, tun_.name());
    }

    // The IPv4 routes for the main table: without the default route when our table has it.
    std::vector<tun::Route> v4_routes(const ClientOptions& o, const tun::PushConfig& p) const {
        auto r = wanted_routes(o, p);
        if (policy4_) std::erase_if(r, [](const tun::Route& x) { return x.prefix == 0; });
        return r;
    }

    void teardown() {
        if (applied_) run_hook(o_.on_down, "on_down", hook_env(o_, *applied_), log_);
        routes6_.clear();
        routes_.clear();
        dns_.clear();
    }

    // After unanswered handshakes, looks the server up again (a dynamic DNS name may have moved).
    void follow_server() {
        unsigned failed = core_.failed_attempts();
        if (failed >= resolve_after_failures && failed / resolve_after_failures != resolved_at_failures_) {
            // The server may have moved (a dynamic DNS name): look it up again.
            resolved_at_failures_ = failed / resolve_after_failures;
            try {
                auto fresh = resolve(o_.server);
                if (!(fresh == server_)) log_.info("server ", o_.server, " now resolves to ", fresh.str());
                server_ = fresh;
            } catch (const Error& e) {
                log_.warn(e.what(), "; keeping ", server_.str());
            }
            try {
                // The server may have moved, or we did (another network took the host route to
                // the server with it): the routes follow either.
                if (applied_ && o_.apply_routes) routes_.apply(v4_routes(o_, *applied_), tun_.name(), server_ipv4(server_));
            } catch (const Error& e) {
                log_.warn("cannot update the routes: ", e.what());
            }
            log_.warn("no answer from the server after ", failed, " handshakes; still trying");
        }
        if (failed == 0) resolved_at_failures_ = 0;
    }

    // SIGHUP: hooks, apply_routes, keepalive and the server's address apply now (the session goes
    // on); keys and the TUN name need a restart. A broken file changes nothing.
    void reload() {
        ClientOptions fresh;
        try {
            fresh = load_client(o_.config_file);
        } catch (const Error& e) {
            log_.error("reload failed, the running config stays: ", e.what());
            return;
        }
        if (applied_) {
            try {
                refuse_clashes(*applied_, fresh);  // default_route may now take IPv6 over the server's address
            } catch (const Error& e) {
                log_.error("reload failed, the running config stays: ", e.what());
                return;
            }
        }
        std::string later;
        if (fresh.core.key.priv != o_.core.key.priv) later += " private_key_file";
        if (fresh.core.server_public != o_.core.server_public) later += " server_public_key";
        if (fresh.tun != o_.tun) later += " tun";
        if (fresh.fwmark != o_.fwmark) later += " fwmark";
        if (fresh.core.offer_aes != o_.core.offer_aes) later += " cipher";
        if (fresh.server != o_.server) {
            try {
                server_ = resolve(fresh.server);
                o_.server = fresh.server;
                if (applied_ && o_.apply_routes && fresh.apply_routes)
                    routes_.apply(v4_routes(o_, *applied_), tun_.name(), server_ipv4(server_));  // the host route follows
            } catch (const Error& e) {
                log_.warn(e.what(), "; keeping ", o_.server);
            }
        }
        if (applied_ && (fresh.apply_routes != o_.apply_routes || fresh.default_route != o_.default_route))
            apply_routes(*applied_, fresh);
        if (applied_ && fresh.apply_dns != o_.apply_dns) {
            if (fresh.apply_dns) dns_.apply(tun_.name(), dns_servers(*applied_));
            else dns_.clear();
        }
        o_.apply_dns = fresh.apply_dns;
        o_.apply_routes = fresh.apply_routes;
        o_.default_route = fresh.default_route;
        o_.on_up = fresh.on_up;
        o_.on_down = fresh.on_down;
        o_.core.keepalive = fresh.core.keepalive;
        core_.set_keepalive(fresh.core.keepalive);
        log_.info("reloaded ", o_.config_file.string(), ": server=", o_.server, " apply_routes=", o_.apply_routes,
                 " default_route=", o_.default_route, " apply_dns=", o_.apply_dns,
                 " persistent_keepalive=", o_.core.keepalive.count());
        if (!later.empty()) log_.warn("changed but applied only at the next start:", later);
    }

    ClientOptions o_;  // SIGHUP replaces parts of it
    const log::Logger& log_;
    SignalFd& signals_;
    tun::Endpoint server_;
    tun::ClientCore core_;
    bool offload_;
    TunDevice tun_;
    HostRoutes routes_;
    HostRoutes6 routes6_{log_};
    HostDns dns_;
    UdpSocket udp_;
    TunReader reader_;
    TunWriter writer_;
    ControlServer control_;
    Epoll ep_;
    std::optional<tun::PushConfig> applied_;
    std::optional<std::chrono::system_clock::time_point> last_handshake_;
    unsigned resolved_at_failures_ = 0;
    std::uint32_t mark_ = 0;  // the mark the UDP socket carries (0: none, a full tunnel goes by halves)
    bool policy4_ = false;    // the IPv4 full tunnel is in our policy table now
    std::uint8_t timer_buf_[tun::max_datagram_len + 64];
};

}  // namespace

int run_client(const ClientOptions& given, const log::Logger& log) {
    // Keyed by the network namespace too: clients in two namespaces may both call their TUN tnc0.
    std::string instance = "tn-tun-client-" + netns_id() + "-" + given.tun;
    auto lock = FileLock::try_acquire(ensure_state_dir() / (instance + ".lock"));
    if (!lock) throw Error(ExitCode::temp_fail, "another tn-tun client already runs on " + given.tun + " in this network namespace");
    SignalFd signals;  // before anything changes the host: a signal during set-up waits for the loop
    ClientRunner runner(given, instance, log, signals);
    return runner.run();
}

}  // namespace tn::tuntool
