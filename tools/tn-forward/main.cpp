// tn-forward: SSH port forwards (-L/-R/-D) that come back by themselves after network loss.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <functional>

#include "base/error.hpp"
#include "base/runtime_dir.hpp"
#include "common/cli.hpp"
#include "ssh/buffered_random.hpp"
#include "events.hpp"
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

    return tn::cli::run(app, common, argc, argv, [&](const tn::log::Logger& log) {
        auto settings = tn::forward::load_settings(v, common.config);
        if (common.check_config) return 0;
        tn::ssh::BufferedRandom padding_rng;  // libssh's per-packet padding was 11% of our CPU
        auto dir = tn::ensure_state_dir();
        auto lock_path = dir / ("forward-" + instance_key(settings) + ".lock");
        auto lock = tn::FileLock::try_acquire(lock_path);
        if (!lock)
            throw tn::Error(tn::ExitCode::temp_fail, "another tn-forward runs this config (lock " + lock_path.string() + " is held)");
        tn::forward::EventSink events(settings.events);
        std::function<tn::forward::Settings()> reload = [&] { return tn::forward::load_settings(v, common.config); };
        return tn::forward::run_tunnel(settings, log, events, reload);
    });
}
