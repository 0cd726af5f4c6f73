// tn-forward: SSH port forwards (-L/-R/-D) that come back by themselves after network loss.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <iostream>

#include "base/error.hpp"
#include "base/runtime_dir.hpp"
#include "base/signals.hpp"
#include "common/cli.hpp"
#include "ssh/buffered_random.hpp"
#include "control.hpp"
#include "events.hpp"
#include "status.hpp"
#include "tunnel.hpp"

namespace {

// One instance per config: the lock is named after the config file, or after the command line's
// server and forwards when there is no file.
std::string instance_key(const tn::forward::Settings& s) {
    std::string id;
    if (!s.config_file.empty()) {
        id = std::filesystem::absolute(s.config_file).lexically_normal().string();
    } else {
        id = s.client.user + "@" + s.client.host + ":" + std::to_string(s.client.port.value_or(0));
        for (const auto& r : s.rules) id += " " + r.str();
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016zx", std::hash<std::string>{}(id));
    return hex;
}

// `tn-forward status`: the instance for this config (or command line) when one is named, else every
// instance of this user. Exit 69 when none answers.
int show_status(const tn::forward::CliValues& v, const std::string& config, bool json) {
    namespace fs = std::filesystem;
    auto dir = tn::state_dir_path();
    std::vector<fs::path> sockets;
    bool named = !config.empty() || !v.target.empty();
    if (named) {
        sockets.push_back(dir / ("forward-" + instance_key(tn::forward::load_settings(v, config)) + ".sock"));
    } else {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(dir, ec)) {
            auto name = e.path().filename().string();
            if (name.rfind("forward-", 0) == 0 && e.path().extension() == ".sock") sockets.push_back(e.path());
        }
        std::sort(sockets.begin(), sockets.end());
    }
    std::string what = named ? (config.empty() ? "this command line" : config) : "this user (state dir " + dir.string() + ")";
    std::vector<std::string> replies;
    for (const auto& path : sockets) {
        try {
            replies.push_back(tn::forward::query_status(path, json));
        } catch (const tn::Error& e) {
            if (e.code() != tn::ExitCode::unavailable) throw;
            // No socket, or a stale one a killed instance left: not running.
            if (named) throw tn::Error(e.code(), "no tn-forward runs for " + what + " (" + e.what() + ")");
        }
    }
    if (replies.empty()) throw tn::Error(tn::ExitCode::unavailable, "no tn-forward runs for " + what);
    std::cout << tn::forward::render_all(replies, json) << std::flush;
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    tn::cli::CommonOptions common;
    tn::forward::CliValues v;
    CLI::App app("Keep SSH port forwards up through network loss (ssh -L/-R/-D + autossh, done right).", "tn-forward");
    tn::cli::add_common_options(app, common);
    app.add_option("target", v.target, "[user@]host[:port] of the SSH server (an ~/.ssh/config alias works)");
    app.add_option("-L,--local", v.local, "[bind:]port:host:hostport  listen here, connect from the server (repeatable)")->allow_extra_args(false);
    app.add_option("-R,--remote", v.remote, "[bind:]port:host:hostport  listen on the server, connect from here (repeatable)")->allow_extra_args(false);
    app.add_option("-D,--dynamic", v.dynamic, "[bind:]port  SOCKS5 proxy here, connections leave from the server")->allow_extra_args(false);
    app.add_option("-p,--port", v.port, "SSH port")->check(CLI::Range(1, 65535));
    app.add_option("-l,--login", v.user, "Remote user");
    app.add_option("-i,--identity", v.identity, "Private key file");
    app.add_option("--ssh-config", v.ssh_config, "ssh_config file (default ~/.ssh/config)");
    app.add_option("--known-hosts", v.known_hosts, "known_hosts file (default ~/.ssh/known_hosts)");
    app.add_flag("--accept-new", v.accept_new, "Pin an unknown host key (its SHA256 fingerprint is logged)");
    app.add_option("--connect-timeout", v.connect_timeout, "Seconds to wait for a connection (default 10)")->check(CLI::Range(1, 600));
    app.add_option("--keepalive", v.keepalive, "Seconds between keepalives when the server is quiet (default 5)")->check(CLI::Range(1, 3600));
    app.add_option("--keepalive-count", v.keepalive_count, "Unanswered keepalives that mean the link is lost (default 3)")->check(CLI::Range(1, 100));
    app.add_option("--probe", v.probe, "HOST:PORT that must accept TCP for the link to count as up");
    app.add_option("--backoff-max", v.backoff_max, "Longest wait between reconnects, seconds (default 30)")->check(CLI::Range(1, 3600));
    app.add_flag("--once", v.once, "Exit 75 at the first loss instead of reconnecting (for tn-watch)");
    app.add_flag("--events", v.events, "Print JSON Lines events on stdout");
    bool json = false;
    auto* status = app.add_subcommand("status", "Show running instances: forwards, state, last loss, reconnects");
    status->add_flag("--json", json, "One JSON document on stdout");
    status->fallthrough();  // -c FILE, -v and the like also after the subcommand

    return tn::cli::run(app, common, argc, argv, [&](const tn::log::Logger& log) {
        if (status->parsed()) return show_status(v, common.config, json);
        auto settings = tn::forward::load_settings(v, common.config);
        if (common.check_config) return 0;
        tn::ssh::BufferedRandom padding_rng;  // libssh's per-packet padding was 11% of our CPU
        auto dir = tn::ensure_state_dir();
        auto lock_path = dir / ("forward-" + instance_key(settings) + ".lock");
        auto lock = tn::FileLock::try_acquire(lock_path);
        if (!lock)
            throw tn::Error(tn::ExitCode::temp_fail, "another tn-forward runs this config (lock " + lock_path.string() + " is held)");
        tn::SignalFd signals({SIGINT, SIGTERM, SIGHUP});  // first: see run_tunnel
        tn::forward::ControlServer control(dir / ("forward-" + instance_key(settings) + ".sock"));
        tn::forward::EventSink events(settings.events);
        std::function<tn::forward::Settings()> reload = [&] { return tn::forward::load_settings(v, common.config); };
        return tn::forward::run_tunnel(settings, log, events, reload, &control, signals);
    });
}
