// The server event loop: one thread, epoll over the UDP socket, the TUN device, the control socket
// and a signalfd; batched UDP I/O; all decisions in tun::ServerCore.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "base/error.hpp"
#include "base/runtime_dir.hpp"
#include "base/signals.hpp"
#include "control.hpp"
#include "datapath.hpp"
#include "host_nat.hpp"
#include "host_routes.hpp"
#include "state_file.hpp"
#include "tun/persist.hpp"
#include "runner.hpp"

namespace tn::tuntool {
namespace {

// How many batches (UDP) or TUN reads (each up to 64 KiB with offloads) one readiness event may
// take before the other direction gets its turn.
constexpr int rounds_per_wakeup = 8;
constexpr int reads_per_wakeup = 64;

class Epoll {
public:
    Epoll() : fd_(::epoll_create1(EPOLL_CLOEXEC)) {
        if (!fd_) throw Error(ExitCode::io, std::string("epoll: ") + std::strerror(errno));
    }
    void add(int fd) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (::epoll_ctl(fd_.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
            throw Error(ExitCode::io, std::string("epoll_ctl: ") + std::strerror(errno));
    }
    int wait(epoll_event* evs, int max, int timeout_ms) {
        int n = ::epoll_wait(fd_.get(), evs, max, timeout_ms);
        return n < 0 ? 0 : n;
    }

private:
    UniqueFd fd_;
};

int ms_until(tun::TimePoint deadline, tun::TimePoint now) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    return static_cast<int>(std::clamp<long long>(ms + 1, 0, 60000));
}

// Routes on the server host for the subnets behind peers (site-to-site), through the TUN: the core
// picks the peer. They go with the device, so even a killed server leaves none behind.
class SiteRoutes {
public:
    SiteRoutes(std::string tun, const log::Logger& log) : tun_(std::move(tun)), log_(log) {}
    void sync(const std::vector<tun::PeerConfig>& peers) {
        std::vector<tun::Route> want;
        for (auto& p : peers) want.insert(want.end(), p.routes.begin(), p.routes.end());
        for (auto& r : have_)
            if (std::find(want.begin(), want.end(), r) == want.end()) ip("del", r);
        std::vector<tun::Route> now;
        for (auto& r : want)
            if (std::find(have_.begin(), have_.end(), r) != have_.end() || ip("add", r)) now.push_back(r);
        have_ = std::move(now);
    }

private:
    bool ip(const char* verb, const tun::Route& r) {
        std::string out;
        int rc = run_program_output({"ip", "route", verb, tun::cidr_str(r), "dev", tun_}, out);
        if (rc != 0) log_.warn("ip route ", verb, " ", tun::cidr_str(r), " dev ", tun_, ": ", out.substr(0, out.find('\n')));
        return rc == 0;
    }
    std::string tun_;
    const log::Logger& log_;
    std::vector<tun::Route> have_;
};

// SIGHUP: reads the config again and applies the peer list, DNS and routes (SPEC §2: only what
// changed; sessions of unchanged peers carry on). A broken file leaves everything as it was.
void reload(const ServerOptions& o, tun::ServerCore& core, SiteRoutes& sites, const log::Logger& log) {
    try {
        auto fresh = load_server(o.config_file);
        auto r = core.reload(fresh.core);
        sites.sync(fresh.core.peers);
        if (fresh.listen != o.listen) r.need_restart.push_back("listen");
        if (fresh.tun != o.tun) r.need_restart.push_back("tun");
        if (fresh.nat != o.nat) r.need_restart.push_back("nat");
        log.info("reloaded ", o.config_file.string(), ": peers kept=", r.kept, " added=", r.added,
                 " removed=", r.removed, " readdressed=", r.readdressed);
        std::string later;
        for (auto& k : r.need_restart) later += (later.empty() ? "" : ", ") + k;
        if (!later.empty()) log.warn("changed but applied only at the next start: ", later);
    } catch (const Error& e) {
        log.error("reload failed, the running config stays: ", e.what());
    } catch (const ParseError& e) {
        log.error("reload failed, the running config stays: ", o.config_file.string(), ": ", e.what());
    }
}

// Peers' handshake timestamps, kept across restarts in a 0600 file named after the server's public
// key (they belong to that identity, whatever the TUN or namespace). Peers no longer configured keep
// their line: one added back later must not accept an old initiation either.
class TimestampRecord {
public:
    TimestampRecord(const tun::Key& server_pub, tun::ServerCore& core, const log::Logger& log)
        : log_(log),
          file_(ensure_persistent_dir() / ("tn-tun-server-" + tun::to_hex(tun::Bytes(server_pub.data(), 8)) + ".timestamps")) {
        if (auto text = read_small_file(file_))
            for (auto& [k, t] : tun::parse_timestamps(*text)) record_[k] = t;
        core.restore_timestamps({record_.begin(), record_.end()});
    }
    void save(const tun::ServerCore& core) {
        for (auto& [k, t] : core.timestamps()) record_[k] = std::max(record_[k], t);
        if (!write_private_file(file_, tun::format_timestamps({record_.begin(), record_.end()})) && !warned_) {
            warned_ = true;
            log_.warn("cannot record handshake timestamps in ", file_.string(), ": ", std::strerror(errno));
        }
    }

private:
    const log::Logger& log_;
    std::filesystem::path file_;
    std::map<tun::Key, tun::Timestamp> record_;
    bool warned_ = false;
};

}  // namespace

int run_server(const ServerOptions& o, const log::Logger& log) {
    // Keyed by the TUN name alone, unlike a client's: the control socket is named after it and
    // `status --tun NAME` finds a server from any namespace, so two servers must not share a name.
    auto lock = FileLock::try_acquire(ensure_state_dir() / ("tn-tun-" + o.tun + ".lock"));
    if (!lock) throw Error(ExitCode::temp_fail, "another tn-tun server already runs on " + o.tun);
    // A NAT device that does not exist is a config error found before anything on the host changes.
    std::optional<std::string> nat_dev;
    if (o.nat) nat_dev = nat_device(*o.nat);
    auto nat_state = ensure_state_dir() / ("tn-tun-server-" + netns_id() + "-" + o.tun + ".nat");
    SignalFd signals;
    tun::ServerCore core(o.core);
    TimestampRecord timestamps(o.core.key.pub, core, log);
    bool offload = offload_wanted();
    TunDevice tun(o.tun, offload);
    tun.configure(core.server_address(), o.core.subnet.prefix, o.core.mtu);
    SiteRoutes sites(tun.name(), log);
    sites.sync(o.core.peers);
    std::optional<HostNat> nat;  // after tun: undone before the device goes
    if (nat_dev) nat.emplace(nat_state, tun.name(), *nat_dev, o.core.subnet, log);
    else undo_leftover_nat(nat_state, log);
    UdpSocket udp(o.listen, AF_INET, offload);
    TunReader reader(tun);
    TunWriter writer(tun);
    ControlServer control(control_socket_path(o.tun));
    Epoll ep;
    for (int fd : {udp.fd(), tun.fd(), control.fd(), signals.fd()}) ep.add(fd);
    log.info("server up listen=", udp.local(), " tun=", tun.name(), " address=", tun::ipv4_str(core.server_address()),
             "/", int(o.core.subnet.prefix), " peers=", o.core.peers.size(),
             " public_key=", tun::key_to_base64(o.core.key.pub), " offload=", tun.offload() ? (tun.uso() ? "tun+uso" : "tun") : "off",
             udp.gso() ? ",gso" : "", udp.gro() ? ",gro" : "");

    LogLimiter reject_log(5, 10);
    auto handle = [&](const tun::Actions& a, tun::TimePoint now) {
        writer.add(a.to_tun);
        if (!a.send.empty()) udp.queue(a.send, a.send_to);
        if (a.send.size() == tun::response_len && a.send[0] == static_cast<std::uint8_t>(tun::MsgType::response))
            timestamps.save(core);  // a handshake was accepted: its timestamp is now the one to beat
        if (a.rejected) {
            std::uint64_t suppressed = 0;
            if (reject_log.allow(now, suppressed))
                log.warn("handshake rejected source=", a.rejected->source.str(), " reason=", a.rejected->reason,
                         suppressed ? " (" + std::to_string(suppressed) + " more not logged)" : "");
        }
        if (a.established)
            log.info("peer up name=", a.established->config.name, " address=", tun::ipv4_str(a.established->address),
                     " endpoint=", a.established->endpoint ? a.established->endpoint->str() : "?");
    };

    epoll_event evs[8];
    for (;;) {
        auto now = tun::Clock::now();
        int n = ep.wait(evs, 8, ms_until(core.tick(now), now));
        for (int e = 0; e < n; ++e) {
            int fd = evs[e].data.fd;
            now = tun::Clock::now();
            if (fd == signals.fd()) {
                while (auto s = signals.take()) {
                    if (*s == SIGHUP) {
                        reload(o, core, sites, log);
                        continue;
                    }
                    log.info("stopping on ", strsignal(*s));
                    return 0;
                }
            } else if (fd == udp.fd()) {
                auto wall = std::chrono::system_clock::now();
                for (int r = 0; r < rounds_per_wakeup; ++r) {
                    std::size_t got = udp.receive();
                    for (std::size_t i = 0; i < got; ++i) {
                        std::uint8_t* scratch = udp.scratch();
                        auto a = core.on_datagram(udp.rx(i), udp.rx_len(i), udp.rx_from(i), now, wall, scratch);
                        bool used = a.send.data() == scratch;
                        handle(a, now);
                        if (used) udp.take_scratch();
                    }
                    writer.flush();  // before the next receive() reuses the buffers
                    udp.flush();
                    if (udp.drained()) break;  // one syscall saved per wakeup: they cost ~1 us here
                }
            } else if (fd == tun.fd()) {
                reader.pump(udp, reads_per_wakeup, [&](std::uint8_t* slot, std::size_t len) {
                    handle(core.on_tun(slot, len, now), now);
                });
            } else if (fd == control.fd()) {
                control.serve_one([&](bool json) { return render_status(core, o, json); });
            }
        }
    }
}

}  // namespace tn::tuntool
