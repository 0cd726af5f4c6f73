// tn-exec: run remote commands and move files over SFTP, one host or many (replaces paramiko scripts).
#include <signal.h>

#include <CLI/CLI.hpp>

#include <iostream>
#include <set>
#include <string>

#include "base/error.hpp"
#include "common/cli.hpp"
#include "fs_cmd.hpp"
#include "persist.hpp"
#include "serve.hpp"
#include "persist_admin.hpp"
#include "runner.hpp"
#include "ssh/buffered_random.hpp"

namespace {

bool is_hosts_option(const std::string& a) { return a.rfind("-H", 0) == 0 || a.rfind("--hosts", 0) == 0; }

// Where `tn-exec run` argv stops being ours: after the host (or at `--`) every word is the remote
// command's, even ones that look like options (`ls -la`). CLI11 only sees the words before it.
int command_start(const CLI::App& app, int argc, char** argv) {
    static const std::set<std::string> with_value = {
        "-i", "--identity", "-p", "--port", "-l", "--login", "--ssh-config", "--known-hosts", "--connect-timeout",
        "-H", "--hosts", "--parallel", "-t", "--timeout", "--env", "--cwd", "--shell", "--persist", "--log-format",
        "--password-file", "--askpass", "-J", "--jump"};
    int sub = tn::cli::subcommand_index(app, argc, argv);  // common options may come first: `-v run`
    if (sub >= argc || std::string(argv[sub]) != "run") return argc;
    bool host_seen = false, fan = false;
    for (int i = 1; i < sub; ++i) fan |= is_hosts_option(argv[i]);
    for (int i = sub + 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--") return i;
        if (a.size() > 1 && a[0] == '-') {
            fan |= is_hosts_option(a);
            if (with_value.count(a)) ++i;
            continue;
        }
        if (!fan && !host_seen) {
            host_seen = true;
            continue;
        }
        return i;
    }
    return argc;
}

void add_ssh_options(CLI::App* sub, tn::exec::SshOptions& s, tn::exec::FanOut& f) {
    sub->add_option("-i,--identity", s.identities, "Private key file (repeatable; tried before the defaults)")
        ->allow_extra_args(false);
    sub->add_option("-p,--port", s.port, "SSH port")->check(CLI::Range(1, 65535));
    sub->add_option("-l,--login", s.user, "Remote user");
    sub->add_option("--ssh-config", s.ssh_config, "ssh_config file (default ~/.ssh/config)");
    sub->add_option("--known-hosts", s.known_hosts, "known_hosts file (default ~/.ssh/known_hosts)");
    sub->add_option("--connect-timeout", s.connect_timeout, "Seconds to wait for the connection")
        ->check(CLI::Range(1, 3600));
    sub->add_flag("--accept-new", s.accept_new, "Pin an unknown host key (its SHA256 fingerprint is printed)");
    sub->add_option("-J,--jump", s.jump, "Reach the host through this jump host: [user@]host[:port] (as ssh -J)");
    sub->add_option("-H,--hosts", f.host_specs, "Many hosts: h1,h2 or @FILE (one a line) or @- (stdin)")
        ->allow_extra_args(false);
    sub->add_option("--parallel", f.parallel, "Hosts worked on at once (default 8)")->check(CLI::Range(1, 1024));
    sub->add_flag("--password-stdin", s.password_opts.from_stdin,
                  "Log in with the password on stdin's first line (when keys are refused)");
    sub->add_option("--password-file", s.password_opts.file, "Log in with the password in FILE (mode 0600)");
    sub->add_option("--askpass", s.password_opts.askpass, "Log in with the password program CMD prints (as SSH_ASKPASS)");
    sub->add_flag("--json", f.json, "JSON Lines: one record per output line and one summary per host");
    sub->fallthrough();  // -v/-q/--log-format work after the subcommand too
}

}  // namespace

int main(int argc, char** argv) {
    // A closed stdout must show up as a write error, not kill us mid-transfer with temp files left.
    ::signal(SIGPIPE, SIG_IGN);
    tn::cli::CommonOptions common;
    tn::exec::SshOptions ssh;
    tn::exec::FanOut fan;
    tn::exec::RunOptions run_o;
    tn::exec::TransferOptions put_o, get_o;

    CLI::App app("Run remote commands and move files over SFTP, on one host or many.", "tn-exec");
    tn::cli::add_common_options(app, common, false);
    app.require_subcommand(1);

    auto* run = app.add_subcommand("run", "Run a command: [user@]host [--] CMD [ARG...]");
    add_ssh_options(run, ssh, fan);
    run->add_flag("-n,--no-stdin", run_o.no_stdin, "Do not forward stdin (the remote reads EOF)");
    run->add_option("-t,--timeout", run_o.timeout, "Seconds before the remote command is ended (exit 124)");
    run->add_option("--env", run_o.env, "Set NAME=VALUE in the remote environment (repeatable)")
        ->allow_extra_args(false);
    run->add_option("--cwd", run_o.cwd, "Remote directory to run in");
    run->add_flag("--tty", run_o.tty, "Request a PTY (window size followed, local terminal raw meanwhile)");
    run->add_flag("--sudo{}", run_o.sudo,
                  "Run CMD through sudo (--sudo=USER: as USER); its password prompt is answered from the password source")
        ->option_text("[=USER]");
    run->add_option("--shell", run_o.shell, "Send STRING to the remote shell as is (instead of CMD words)");
    run->add_option("--persist", fan.persist, "Keep the session in a background master for SECONDS and reuse it")
        ->check(CLI::Range(1, 86400));
    run->add_option("args", run_o.args, "[user@]host (unless -H), then CMD [ARG...]");

    auto add_transfer = [&](CLI::App* sub, tn::exec::TransferOptions& t, const char* paths_help) {
        add_ssh_options(sub, ssh, fan);
        sub->add_flag("-r,--recursive", t.recursive, "Copy directory trees");
        sub->add_flag("--resume", t.resume, "Continue a partial file left by an interrupted transfer");
        sub->add_flag("--preserve", t.preserve, "Keep modes as they are (default: the umask applies on get)");
        // A callback, not a "!" flag: CLI11 would print the negated default as "--no-progress{false}".
        sub->add_flag_callback("--no-progress", [&t] { t.progress = false; }, "Never draw the progress bar (it is drawn only on a TTY)");
        sub->add_option("--persist", fan.persist, "Keep the session in a background master for SECONDS and reuse it")
            ->check(CLI::Range(1, 86400));
        sub->add_option("paths", t.paths, paths_help)->required();
    };
    auto* put = app.add_subcommand("put", "Upload: LOCAL... [user@]host:REMOTE (REMOTE alone with -H)");
    add_transfer(put, put_o, "LOCAL... then [user@]host:REMOTE");
    auto* get = app.add_subcommand("get", "Download: [user@]host:REMOTE... LOCAL (REMOTE... LOCAL with -H)");
    add_transfer(get, get_o, "[user@]host:REMOTE... then LOCAL");

    tn::exec::FsOptions fs_o;
    auto fs_cmds = tn::exec::add_fs_commands(app, fs_o, ssh, [&](CLI::App* sub) {
        add_ssh_options(sub, ssh, fan);
        sub->add_option("--persist", fan.persist, "Keep the session in a background master for SECONDS and reuse it")
            ->check(CLI::Range(1, 86400));
    });

    auto* serve = app.add_subcommand("serve", "For programs: JSON Lines requests on stdin, events and results on stdout");
    bool serve_stdio = false;
    add_ssh_options(serve, ssh, fan);
    serve->add_flag("--stdio", serve_stdio, "Speak JSON Lines on stdin/stdout (the only transport)")->required();

    // persist list|stop: the masters --persist left running, as `ssh -O check|exit` shows ControlMasters.
    auto* persist = app.add_subcommand("persist", "List or stop the background masters of run/put/get: persist list|stop");
    persist->require_subcommand(1);
    bool persist_json = false, stop_all = false;
    std::vector<std::string> list_which, stop_which;
    auto* plist = persist->add_subcommand("list", "Show running masters (PID TARGET SOCKET); exit 1 if TARGET has none");
    plist->add_flag("--json", persist_json, "One JSON document: {\"masters\": [...]}");
    plist->add_option("target", list_which, "Only masters for TARGET, PID or SOCKET");
    auto* pstop = persist->add_subcommand("stop", "Stop the masters for TARGET (as listed), PID or SOCKET");
    pstop->add_flag("--all", stop_all, "Stop every master of this user");
    pstop->add_option("target", stop_which, "TARGET, PID or SOCKET (repeatable)");

    // The --persist master: started by tn-exec itself, hidden from help and completion.
    auto* master = app.add_subcommand("__master", "")->group("");
    std::string master_socket, master_host;
    int master_idle = 60, master_ready = -1;
    add_ssh_options(master, ssh, fan);
    master->add_option("--socket", master_socket)->required();
    master->add_option("--idle", master_idle)->required();
    master->add_option("--ready-fd", master_ready)->required();
    master->add_option("--password-fd", ssh.password_opts.fd);
    master->add_option("host", master_host)->required();

    int split = command_start(app, argc, argv);
    std::vector<std::string> command(argv + split, argv + argc);
    if (!command.empty() && command.front() == "--") command.erase(command.begin());
    return tn::cli::run(app, common, split, argv, [&](const tn::log::Logger& log) {
        tn::ssh::BufferedRandom padding_rng;  // libssh pads every packet it sends: uploads pay per 32 KiB
        if (ssh.password_opts.from_stdin)
            for (const auto& h : fan.host_specs)
                if (h == "@-") throw tn::ParseError("--password-stdin and -H @- both want stdin; use -H @FILE");
        auto* fs_cmd = fs_cmds.chosen();
        if (*serve && ssh.password_opts.from_stdin)
            throw tn::ParseError("serve --stdio reads requests on stdin: use --password-file or --askpass");
        if (*run || *put || *get || *master || *serve || fs_cmd) ssh.password = tn::exec::PasswordSource::make(ssh.password_opts);
        if (*run) {
            if (!command.empty()) run_o.args.push_back("--");
            for (auto& w : command) run_o.args.push_back(w);
            return tn::exec::run_main(ssh, fan, run_o, log);
        }
        if (*plist) return tn::exec::persist_list_main(list_which, persist_json, std::cout);
        if (*pstop) return tn::exec::persist_stop_main(stop_which, stop_all, log);
        if (*master) return tn::exec::master_main(master_host, ssh, master_socket, master_idle, master_ready);
        if (*serve) return tn::exec::serve_main(ssh, log);
        if (fs_cmd) return tn::exec::fs_main(fs_cmd->get_name(), ssh, fan, fs_o, log);
        if (*put) return tn::exec::put_main(ssh, fan, put_o, log);
        return tn::exec::get_main(ssh, fan, get_o, log);
    });
}
