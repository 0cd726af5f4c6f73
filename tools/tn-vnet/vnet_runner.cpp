// Runs tn-vnet (event loop, signals, terminal), applies reloads as a diff, and talks to a running
// vnet's control socket for `ctl` and `shell`.
#include "vnet_runner.hpp"

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <iostream>

#include "base/control_line.hpp"
#include "base/error.hpp"
#include "base/runtime_dir.hpp"
#include "base/secret.hpp"
#include "base/strings.hpp"
#include "relay/time_scale.hpp"
#include "vnet_agent.hpp"
#include "vnet_terminal.hpp"
#include "relay/io_sd_watchdog.hpp"

namespace tn::vnet {

namespace {
std::string find_socket(const std::string& config, const std::string& socket) {
    if (!socket.empty()) return socket;
    if (!config.empty()) return ctl_socket_path(load_vnet_config(config));
    std::vector<std::string> found;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(state_dir_path(), ec)) {
        auto n = e.path().filename().string();
        if (n.rfind("tn-vnet-", 0) == 0 && n.size() > 5 && n.substr(n.size() - 5) == ".sock") found.push_back(e.path());
    }
    if (found.size() == 1) return found[0];
    // Nothing to talk to is "service unavailable" (69), as when the named socket is gone; several
    // candidates is a usage problem: the user must pick one.
    if (found.empty())
        throw Error(ExitCode::unavailable, "no tn-vnet is running: no control socket in " + state_dir_path().string() +
                                               " (start one with 'tn-vnet -c FILE', or pass -c FILE or --socket)");
    throw Error(ExitCode::usage, "several tn-vnet sockets found in " + state_dir_path().string() + ": pass -c FILE or --socket");
}

}  // namespace

std::optional<std::size_t> VnetAgent::route_in(const std::vector<HostPort>& next, std::vector<std::string>& changes) const {
    if (next != cfg_.routes) changes.push_back("routes " + routes_text(next));
    auto it = std::find(next.begin(), next.end(), current_route());
    if (it == next.end()) return std::nullopt;
    return static_cast<std::size_t>(it - next.begin());
}

void VnetAgent::reload(const std::string& file, ReplyFn reply) {
    VnetConfig next;
    try {
        next = load_vnet_config(file);
    } catch (const Error& e) {
        return reply(Reply{78, std::string("reload failed, keeping the running config: ") + e.what() + "\n"});
    }
    std::vector<std::string> changes;
    auto kept = route_in(next.routes, changes);  // a changed list moves the session only if its route left it
    bool reconnect = !kept || next.token.expose() != cfg_.token.expose() || next.group != cfg_.group ||
                     next.name != cfg_.name || next.tls != cfg_.tls || next.fingerprint != cfg_.fingerprint;
    auto same_serve = [](const ServeCfg& a, const ServeCfg& b) {
        return a.id == b.id && a.ip == b.ip && a.port == b.port && a.info == b.info && a.active == b.active &&
               a.remote_port == b.remote_port && a.type == b.type && a.custom_domains == b.custom_domains;
    };
    // Serves: removed or changed ones are withdrawn; new or changed ones registered. Others untouched.
    for (auto it = serves_.begin(); it != serves_.end();) {
        if (it->unserve) { ++it; continue; }
        auto n = std::find_if(next.serves.begin(), next.serves.end(), [&](auto& s) { return s.name == it->cfg.name; });
        if (n == next.serves.end() || !same_serve(*n, it->cfg)) {
            changes.push_back("serve -" + it->cfg.name);
            unregister_serve(*it);
            it = serves_.erase(it);
        } else {
            ++it;
        }
    }
    for (const auto& s : next.serves) {
        if (serve_by_name(s.name)) continue;
        LocalServe ls;
        ls.cfg = s;
        serves_.push_back(ls);
        changes.push_back("serve +" + s.name);
        if (s.active) register_serve(serves_.back());
    }
    for (auto it = uses_.begin(); it != uses_.end();) {
        if (it->cfg.name.rfind("unserve-", 0) == 0) { ++it; continue; }
        auto n = std::find_if(next.uses.begin(), next.uses.end(), [&](auto& u) { return u.name == it->cfg.name; });
        if (n == next.uses.end() || n->id != it->cfg.id || n->ip != it->cfg.ip || n->port != it->cfg.port || n->active != it->cfg.active ||
            n->type != it->cfg.type || n->udp_idle_timeout != it->cfg.udp_idle_timeout || n->udp_max_flows != it->cfg.udp_max_flows) {
            changes.push_back("use -" + it->cfg.name);
            detach(*it, UseState::inactive);
            it = uses_.erase(it);
        } else {
            ++it;
        }
    }
    for (const auto& u : next.uses) {
        if (use_by_name(u.name)) continue;
        LocalUse lu;
        lu.cfg = u;
        uses_.push_back(lu);
        changes.push_back("use +" + u.name);
        if (u.active) attach(uses_.back());
    }
    // New links run (or stop running) the handshake with the new secret; links already bound keep theirs.
    if (next.e2e_secret != cfg_.e2e_secret)
        changes.push_back(!next.e2e_secret ? "e2e off" : cfg_.e2e_secret ? "e2e_secret changed" : "e2e on");
    bool pool_changed = next.link_pool != cfg_.link_pool;
    if (pool_changed) changes.push_back("link_pool " + std::to_string(next.link_pool));
    auto keep_serves = std::move(serves_);
    auto keep_uses = std::move(uses_);
    cfg_ = std::move(next);
    cursor_.relist(cfg_.routes.size(), kept);  // the same route at its new place, or a new round
    pools_.set_target(cfg_.link_pool);
    if (pool_changed && !reconnect) {
        drop_pools();
        refill_pools();
    }
    serves_ = std::move(keep_serves);
    uses_ = std::move(keep_uses);
    if (reconnect) {
        changes.push_back("route settings: reconnecting");
        if (connected_) restart_round_ = true, lost("config reloaded with new route settings");  // lost() takes the flag
    }
    std::string text = changes.empty() ? "reload: nothing changed" : "reload: ";
    for (std::size_t i = 0; i < changes.size(); ++i) text += (i ? ", " : "") + changes[i];
    log_.info(text);
    reply(Reply{0, text + "\n"});
}

namespace {
int run_loaded(VnetConfig cfg, const std::string& config, const log::Logger& log);
}

int run_vnet(const std::string& config, const log::Logger& log) {
    auto cfg = load_vnet_config(config);
    if (auto w = secret_file_warning(config)) log.warn(*w, " (it has the group token)");
    if (!cfg.e2e_secret_path.empty())
        if (auto w = secret_file_warning(cfg.e2e_secret_path)) log.warn(*w, " (the end-to-end secret)");
    return run_loaded(std::move(cfg), config, log);
}

int run_vnet(VnetConfig cfg, const log::Logger& log) { return run_loaded(std::move(cfg), "", log); }

namespace {
int run_loaded(VnetConfig cfg, const std::string& config, const log::Logger& log) {
    double scale = relay::time_scale_from_env();
    private_state_dir();
    auto lock = FileLock::try_acquire(state_dir_path() / (instance_stem(cfg) + ".lock"));
    if (!lock)
        throw Error(ExitCode::temp_fail, "a tn-vnet named '" + cfg.name + "' in group '" + cfg.group + "' for route " +
                                             cfg.routes.front().str() + " already runs here");
    bool terminal = cfg.terminal;
    // The TLS control connection writes through OpenSSL's socket BIO (plain write(2), no
    // MSG_NOSIGNAL): a peer that closed would otherwise kill the process with SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);
    relay::keep_freed_buffers();
    asio::io_context io(1);  // one event-loop thread, fixed: no thread per connection
    VnetAgent agent(io, std::move(cfg), log, scale);
    // Signals are taken before the control socket and the listeners open: a SIGHUP sent as soon as the
    // socket answers must reload, not meet the default action and kill the agent.
    asio::signal_set sigs(io, SIGINT, SIGTERM, SIGHUP);
    std::function<void()> wait_signal = [&]() {
        sigs.async_wait([&](relay::error_code ec, int sig) {
            if (ec) return;
            if (sig == SIGHUP && config.empty()) {
                log.info("SIGHUP ignored: started from flags, there is no config file to reload");
                return wait_signal();
            }
            if (sig == SIGHUP) {
                agent.reload(config, [&](Reply r) {
                    if (r.code) log.error(trim(r.body));
                });
                return wait_signal();
            }
            log.info("stopping on signal ", sig);
            agent.stop();
        });
    };
    wait_signal();
    agent.start();
    // The terminal reads commands from stdin only when it is a TTY: never prompt a pipe (SPEC §2).
    std::optional<Terminal> term;
    if (terminal) {
        if (::isatty(0)) {
            term.emplace(io, agent, log);
            term->start();
        } else {
            log.warn("terminal = true but stdin is not a TTY: terminal disabled (use 'tn-vnet ctl')");
        }
    }
    // Type=notify: the uses' listeners are bound and SIGTERM is handled, so systemd may stop us at once.
    sd::notify_ready(), sd::keep_watchdog(io);
    io.run();
    return agent.exit_code();
}
}  // namespace

int run_ctl(const std::string& config, const std::string& socket, const std::vector<std::string>& words) {
    auto [code, body] = control_ask(find_socket(config, socket), words, "tn-vnet is not running");
    // Whatever the running vnet relays from peers, the terminal gets no control bytes but tabs and newlines.
    (code == 0 ? std::cout : std::cerr) << escape_controls(body, "\t\n") << std::flush;
    return code;
}

int run_shell(const std::string& config, const std::string& socket) {
    auto path = find_socket(config, socket);
    bool tty = ::isatty(0);
    std::string line;
    for (;;) {
        if (tty) std::cerr << ">: " << std::flush;
        if (!std::getline(std::cin, line)) break;
        std::vector<std::string> words;
        for (auto& p : split(line, ' '))
            if (!p.empty()) words.push_back(p);
        if (words.empty()) continue;
        if (words[0] == "exit" || words[0] == "quit") break;
        auto [code, body] = control_ask(path, words, "tn-vnet is not running");
        (code == 0 ? std::cout : std::cerr) << escape_controls(body, "\t\n") << std::flush;
    }
    return 0;
}

}  // namespace tn::vnet

namespace tn::vnet {
void run_check(const std::string& config) { load_vnet_config(config); }
}  // namespace tn::vnet
