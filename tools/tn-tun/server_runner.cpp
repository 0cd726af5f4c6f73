// The server event loop: one thread, epoll over the UDP socket, the TUN device, the control socket
// and a signalfd; batched UDP I/O; all decisions in tun::ServerCore.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "base/epoll.hpp"
#include "base/error.hpp"
#include "base/runtime_dir.hpp"
#include "base/signals.hpp"
#include "base/strings.hpp"
#include "base/unique_fd.hpp"
#include "control.hpp"
#include "datapath.hpp"
#include "host_nat.hpp"
#include "host_routes.hpp"
#include "state_file.hpp"
#include "tun/persist.hpp"
#include "tun/route_plan6.hpp"
#include "runner.hpp"
#include "base/sd_notify.hpp"

namespace tn::tuntool {
namespace {

// How many packets one readiness event may move before the other direction gets its turn, the same
// both ways (a UDP turn stops after the batch that reaches it; a TUN turn after the read that does).
// Each packet written to the TUN may come straight back (an echo, a TCP ack) and waits in the TUN's
// queue (txqueuelen, 500) until the next TUN turn: with 256 UDP datagrams in against 64 TUN reads
// out per turn, as before, 1,000 peers' echoes overflowed it (bench/tun/SCALE.md).
constexpr std::size_t packets_per_turn = 256;
constexpr int rounds_per_wakeup = 8;
// The server's TUN queue: what one UDP turn may write at most (the round that reaches the budget can
// be a full receive of GRO trains), so the replies to one turn's packets fit until the TUN turn
// reads them. Deeper than the kernel's 500: up to ~2,300 packets (a few ms at this server's rate)
// may wait in it under a burst, rather than being dropped.
constexpr std::size_t tun_txqueuelen = packets_per_turn + UdpSocket::rx_batch * UdpSocket::max_gso_segments;

// Routes on the server host for the subnets behind peers (site-to-site), through the TUN: the core
// picks the peer. They go with the device, so even a killed server leaves none behind.
class SiteRoutes {
public:
    SiteRoutes(std::string tun, const log::Logger& log) : tun_(std::move(tun)), log_(log) {}
    void sync(const std::vector<tun::PeerConfig>& peers) {
        std::vector<std::string> want;  // CIDR text of both families: ip(8) takes either
        for (auto& p : peers) {
            for (auto& r : p.routes) want.push_back(tun::cidr_str(r));
            for (auto& r : p.routes6) want.push_back(tun::cidr_str(r));
        }
        for (auto& r : have_)
            if (std::find(want.begin(), want.end(), r) == want.end()) ip("del", r);
        std::vector<std::string> now;
        for (auto& r : want)
            if (std::find(have_.begin(), have_.end(), r) != have_.end() || ip("add", r)) now.push_back(r);
        have_ = std::move(now);
    }

private:
    bool ip(const char* verb, const std::string& cidr) {
        std::string out;
        int rc = run_program_output({"ip", "route", verb, cidr, "dev", tun_}, out);
        if (rc != 0) log_.warn("ip route ", verb, " ", cidr, " dev ", tun_, ": ", out.substr(0, out.find('\n')));
        return rc == 0;
    }
    std::string tun_;
    const log::Logger& log_;
    std::vector<std::string> have_;
};

// `[server] nat` as applied now: masquerade on (HostNat) or off, changed by SIGHUP. Declared after the
// TUN device, so NAT is undone before the device goes.
class Gateway {
public:
    Gateway(std::filesystem::path state, std::string tun, tun::Route subnet, std::optional<tun::Route6> subnet6,
            const log::Logger& log)
        : state_(std::move(state)), tun_(std::move(tun)), subnet_(subnet), subnet6_(subnet6), log_(log) {}
    // `configured` as in the config; `device` what it resolved to (nat_device(), checked before).
    // Masquerades the tunnel subnets (IPv6 too with subnet6) and the subnets behind peers (their
    // site routes: a host there reaches the internet through the server like a client). Without
    // NAT, what a killed earlier run left is undone. Throws tn::Error(io) when nft fails.
    void set(const std::optional<std::string>& configured, const std::optional<std::string>& device,
             const std::vector<tun::PeerConfig>& peers) {
        NatSources sources{{subnet_}, {}};  // the running subnets: new ones wait for a restart
        if (subnet6_) sources.v6.push_back(*subnet6_);  // IPv6 only with subnet6
        for (auto& p : peers) {
            sources.v4.insert(sources.v4.end(), p.routes.begin(), p.routes.end());
            if (subnet6_) sources.v6.insert(sources.v6.end(), p.routes6.begin(), p.routes6.end());
        }
        if (started_ && configured == configured_ && device == device_ && (!device || sources == sources_)) return;
        bool was_on = nat_.has_value();
        nat_.reset();  // undone first: a new table of the same name replaces nothing of someone else's
        if (was_on && !device) log_.info("nat off");
        configured_ = configured;
        device_ = std::nullopt;
        sources_ = sources;
        if (device) nat_.emplace(state_, tun_, *device, sources_, log_), device_ = device;
        else if (!started_) undo_leftover_nat(state_, log_);
        started_ = true;
    }

private:
    std::filesystem::path state_;
    std::string tun_;
    tun::Route subnet_;
    std::optional<tun::Route6> subnet6_;
    const log::Logger& log_;
    bool started_ = false;
    NatSources sources_;
    std::optional<std::string> configured_, device_;
    std::optional<HostNat> nat_;
};

// SIGHUP: reads the config again and applies the peer list, DNS, routes and nat (SPEC §2: only what
// changed; sessions of unchanged peers carry on). A broken file, or a nat device that does not exist,
// leaves everything as it was. Returns what it logged last, as the reply to a reload asked through
// the control socket (exit code 78 when the file was refused, 74 when nft failed).
ControlReply reload(const ServerOptions& o, tun::ServerCore& core, SiteRoutes& sites, Gateway& gateway, const log::Logger& log) {
    std::string why;
    try {
        auto fresh = load_server(o.config_file);
        std::optional<std::string> nat_dev;
        if (fresh.nat) nat_dev = nat_device(*fresh.nat);  // a config error before anything changes
        auto r = core.reload(fresh.core);
        sites.sync(fresh.core.peers);
        if (fresh.listen != o.listen) r.need_restart.push_back("listen");
        if (fresh.tun != o.tun) r.need_restart.push_back("tun");
        std::string done = "reloaded " + o.config_file.string() + ": peers kept=" + std::to_string(r.kept) +
                           " added=" + std::to_string(r.added) + " removed=" + std::to_string(r.removed) +
                           " readdressed=" + std::to_string(r.readdressed) + " rekeyed=" + std::to_string(r.rekeyed);
        log.info(done);
        std::string later;
        for (auto& k : r.need_restart) later += (later.empty() ? "" : ", ") + k;
        if (!later.empty()) log.warn("changed but applied only at the next start: ", later);
        try {
            gateway.set(fresh.nat, nat_dev, fresh.core.peers);
        } catch (const Error& e) {
            log.error("nat not applied: ", e.what());
            return {to_int(e.code()), done + "; nat not applied: " + e.what() + "\n"};
        }
        return {0, done + "\n"};
    } catch (const Error& e) {
        why = e.what();
    } catch (const ParseError& e) {
        why = o.config_file.string() + ": " + e.what();
    }
    log.error("reload failed, the running config stays: ", why);
    return {to_int(ExitCode::config), "reload failed, the running config stays: " + why + "\n"};
}

// Peers' handshake timestamps, kept across restarts in a 0600 file named after the server's public
// key (they belong to that identity, whatever the TUN or namespace). Peers no longer configured keep
// their line: one added back later must not accept an old initiation either. Each accepted handshake
// appends one line (tun::TimestampLog); the file is written whole at start and when the log is due
// for compaction, each time to a new file renamed over the old one.
class TimestampRecord {
public:
    TimestampRecord(const tun::Key& server_pub, tun::ServerCore& core, const log::Logger& log)
        : log_(log),
          file_(ensure_persistent_dir() / ("tn-tun-server-" + tun::to_hex(tun::Bytes(server_pub.data(), 8)) + ".timestamps")),
          record_(load(file_)) {
        core.restore_timestamps({record_.record().begin(), record_.record().end()});
        rewrite();
    }
    // `p`'s initiation was accepted: its timestamp is now the one to beat.
    void save(const tun::Peer& p) {
        auto line = record_.accept(p.config.public_key, p.last_timestamp);
        if (record_.compaction_due() || !append(line)) rewrite();
    }

private:
    // A record that exists but cannot be read stops the start: going on without it would accept
    // initiations captured before the restart.
    static tun::TimestampLog load(const std::filesystem::path& file) {
        if (auto text = read_small_file(file, kMaxFile)) return tun::TimestampLog(*text);
        std::error_code ec;
        if (!std::filesystem::exists(std::filesystem::symlink_status(file, ec))) return tun::TimestampLog();
        throw Error(ExitCode::io, "cannot read the handshake timestamps in " + file.string() +
                                      " (replay protection across restarts); delete it, with the server stopped, to forget them");
    }
    bool append(const std::string& line) {
        if (!appender_) return false;
        ssize_t n;
        do n = ::write(appender_.get(), line.data(), line.size());
        while (n < 0 && errno == EINTR);
        return n == static_cast<ssize_t>(line.size());  // a short write (disk full): the next rewrite mends it
    }
    void rewrite() {
        appender_.reset();
        if (write_private_file(file_, record_.whole()))
            appender_.reset(::open(file_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW));
        if (appender_) {
            record_.compacted();
        } else if (!warned_) {
            warned_ = true;
            log_.warn("cannot record handshake timestamps in ", file_.string(), ": ", std::strerror(errno));
        }
    }

    // 900,000 lines of ~70 bytes: 450,000 peers, the log's second line for each included.
    static constexpr std::size_t kMaxFile = 64u << 20;
    const log::Logger& log_;
    std::filesystem::path file_;
    tun::TimestampLog record_;
    UniqueFd appender_;  // the file, opened for appending after each rewrite
    bool warned_ = false;
};

// A subnet6 the host already routes (another interface's network, a route someone added) would
// split its traffic between the two: a config error, found before anything on the host changes.
void refuse_taken_subnet6(const tun::Route6& subnet6, const std::string& tun) {
    std::string table;
    if (run_program_output({"ip", "-6", "-o", "route", "show"}, table) != 0) return;  // no IPv6 here: nothing to clash with
    if (auto line = tun::overlapping_route6(table, subnet6, tun))
        throw Error(ExitCode::config, "subnet6 " + tun::cidr_str(subnet6) + " overlaps a network this host already routes (" +
                                          std::string(trim(*line)) + "): choose another subnet6");
}

// The server's event loop over what run_server set up: which descriptor is ready decides the turn.
class ServerLoop {
public:
    ServerLoop(const ServerOptions& o, const log::Logger& log, SignalFd& signals, tun::ServerCore& core,
               TimestampRecord& timestamps, SiteRoutes& sites, Gateway& gateway, UdpSocket& udp, TunDevice& tun,
               ControlServer& control)
        : o_(o), log_(log), signals_(signals), core_(core), timestamps_(timestamps), sites_(sites), gateway_(gateway), udp_(udp),
          tun_(tun), reader_(tun), writer_(tun), control_(control) {
        for (int fd : {udp_.fd(), tun_.fd(), control_.fd(), signals_.fd()}) ep_.add(fd);
    }
    // Runs until SIGINT/SIGTERM (0).
    int run() {
        for (;;) {
            auto now = tun::Clock::now();
            core_.tick(now);
            for (const epoll_event& ev : ep_.wait(ms_until(core_.next_deadline(), now))) {
                int fd = ev.data.fd;
                now = tun::Clock::now();
                if (fd == signals_.fd()) {
                    if (!signals()) return 0;
                } else if (fd == udp_.fd()) {
                    on_udp(now);
                } else if (fd == tun_.fd()) {
                    // As many as the last UDP turn wrote: what came back from them is waiting.
                    reader_.pump(udp_, tun_budget_, [&](std::uint8_t* slot, std::size_t len) {
                        handle(core_.on_tun(slot, len, now), now);
                    });
                } else if (fd == control_.fd()) {
                    control_.serve_one([&](std::string_view req) { return answer(req); });
                }
            }
        }
    }

private:
    // A control request: the status, or (tn-tun server add-peer/remove-peer) a reload like SIGHUP's.
    ControlReply answer(std::string_view req) {
        if (req == "reload") return reload(o_, core_, sites_, gateway_, log_);
        return {0, render_status(core_, o_, req.rfind("json", 0) == 0)};
    }

    // False when a signal says stop.
    bool signals() {
        while (auto s = signals_.take()) {
            if (*s == SIGHUP) {
                reload(o_, core_, sites_, gateway_, log_);
                continue;
            }
            log_.info("stopping on ", strsignal(*s));
            return false;
        }
        return true;
    }

    void on_udp(tun::TimePoint now) {
        auto wall = std::chrono::system_clock::now();
        std::size_t handled = 0;
        for (int r = 0; r < rounds_per_wakeup && handled < packets_per_turn; ++r) {
            std::size_t got = udp_.receive();
            handled += got;
            for (std::size_t i = 0; i < got; ++i) {
                std::uint8_t* scratch = udp_.scratch();
                auto a = core_.on_datagram(udp_.rx(i), udp_.rx_len(i), udp_.rx_from(i), now, wall, scratch);
                bool used = a.send.data() == scratch;
                handle(a, now);
                if (used) udp_.take_scratch();
            }
            writer_.flush();  // before the next receive() reuses the buffers
            udp_.flush();
            if (udp_.drained()) break;  // one syscall saved per wakeup: they cost ~1 us here
        }
        tun_budget_ = std::max(packets_per_turn, handled);
    }

    void handle(const tun::Actions& a, tun::TimePoint now) {
        writer_.add(a.to_tun);
        if (!a.send.empty()) udp_.queue(a.send, a.send_to);
        if (a.answered) timestamps_.save(*a.answered);
        if (a.rejected) {
            std::uint64_t suppressed = 0;
            if (reject_log_.allow(now, suppressed))
                log_.warn("handshake rejected source=", a.rejected->source.str(), " reason=", a.rejected->reason,
                          suppressed ? " (" + std::to_string(suppressed) + " more not logged)" : "");
        }
        if (a.established)
            log_.info("peer up name=", a.established->config.name, " address=", tun::ipv4_str(a.established->address),
                      " endpoint=", a.established->endpoint ? a.established->endpoint->str() : "?");
    }

    const ServerOptions& o_;
    const log::Logger& log_;
    SignalFd& signals_;
    tun::ServerCore& core_;
    TimestampRecord& timestamps_;
    SiteRoutes& sites_;
    Gateway& gateway_;
    UdpSocket& udp_;
    TunDevice& tun_;
    TunReader reader_;
    TunWriter writer_;
    ControlServer& control_;
    Epoll ep_;
    LogLimiter reject_log_{5, 10};
    std::size_t tun_budget_ = packets_per_turn;  // packets the next TUN turn may move
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
    if (o.core.subnet6) refuse_taken_subnet6(*o.core.subnet6, o.tun);
    auto nat_state = ensure_state_dir() / ("tn-tun-server-" + netns_id() + "-" + o.tun + ".nat");
    SignalFd signals;  // first: a signal during set-up waits for the loop, so the teardown still runs
    tun::ServerCore core(o.core);
    TimestampRecord timestamps(o.core.key.pub, core, log);
    bool offload = offload_wanted();
    TunDevice tun(o.tun, offload);
    tun.configure(core.server_address(), o.core.subnet.prefix, o.core.mtu, tun_txqueuelen);
    tun.configure6(core.server_address6(), o.core.subnet6 ? o.core.subnet6->prefix : 0);
    SiteRoutes sites(tun.name(), log);
    sites.sync(o.core.peers);
    Gateway gateway(nat_state, tun.name(), o.core.subnet, o.core.subnet6, log);  // after tun: undone before the device goes
    gateway.set(o.nat, nat_dev, o.core.peers);
    UdpSocket udp(o.listen, AF_INET, offload);
    ControlServer control(control_socket_path(o.tun));
    ServerLoop loop(o, log, signals, core, timestamps, sites, gateway, udp, tun, control);
    log.info("server up listen=", udp.local(), " tun=", tun.name(), " address=", tun::ipv4_str(core.server_address()),
             "/", int(o.core.subnet.prefix),
             o.core.subnet6 ? " address6=" + tun::ipv6_str(*core.server_address6()) + "/" + std::to_string(o.core.subnet6->prefix) : "",
             " peers=", o.core.peers.size(),
             " public_key=", tun::key_to_base64(o.core.key.pub), " offload=", tun.offload() ? (tun.uso() ? "tun+uso" : "tun") : "off",
             udp.gso() ? ",gso" : "", udp.gro() ? ",gro" : "");
    sd::notify_ready();  // Type=notify: the UDP socket, the TUN device and the control socket are up
    return loop.run();
}

}  // namespace tn::tuntool
