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

void add_persist_option(CLI::App* sub, tn::exec::FanOut& f) {
    sub->add_option("--persist", f.persist, "Keep the session in a background master for SECONDS and reuse it")
        ->check(CLI::Range(1, 86400));
}

// Every option's value, and the subcommands that tell which one the user chose.
struct Cli {
    tn::cli::CommonOptions common;
    tn::exec::SshOptions ssh;
    tn::exec::FanOut fan;
    tn::exec::RunOptions run_o;
    tn::exec::TransferOptions put_o, get_o;
    tn::exec::FsOptions fs_o;
    tn::exec::FsCommands fs_cmds;
    bool serve_stdio = false;
    bool persist_json = false, stop_all = false;
    std::vector<std::string> list_which, stop_which;
    std::string master_socket, master_host;
    int master_idle = 60, master_ready = -1;
    CLI::App *run = nullptr, *put = nullptr, *get = nullptr, *serve = nullptr;
    CLI::App *plist = nullptr, *pstop = nullptr, *master = nullptr;
};

void add_run_command(CLI::App& app, Cli& c) {
    auto& o = c.run_o;
    auto* run = c.run = app.add_subcommand("run", "Run a command: [user@]host [--] CMD [ARG...]");
    add_ssh_options(run, c.ssh, c.fan);
    run->add_flag("-n,--no-stdin", o.no_stdin, "Do not forward stdin (the remote reads EOF)");
    run->add_option("-t,--timeout", o.timeout, "Seconds before the remote command is ended (exit 124)");
    run->add_option("--env", o.env, "Set NAME=VALUE in the remote environment (repeatable)")->allow_extra_args(false);
    run->add_option("--cwd", o.cwd, "Remote directory to run in");
    run->add_flag("--tty", o.tty, "Request a PTY (window size followed, local terminal raw meanwhile)");
    run->add_flag("--sudo{}", o.sudo,
                  "Run CMD through sudo (--sudo=USER: as USER); its password prompt is answered from the password source")
        ->option_text("[=USER]");
    run->add_option("--shell", o.shell, "Send STRING to the remote shell as is (instead of CMD words)");
    add_persist_option(run, c.fan);
    run->add_option("args", o.args, "[user@]host (unless -H), then CMD [ARG...]");
}

CLI::App* add_transfer_command(CLI::App& app, Cli& c, tn::exec::TransferOptions& t, const char* name,
                               const char* description, const char* paths_help) {
    auto* sub = app.add_subcommand(name, description);
    add_ssh_options(sub, c.ssh, c.fan);
    sub->add_flag("-r,--recursive", t.recursive, "Copy directory trees");
    sub->add_flag("--resume", t.resume, "Continue a partial file left by an interrupted transfer");
    sub->add_flag("--preserve", t.preserve, "Keep modes as they are (default: the umask applies on get)");
    // A callback, not a "!" flag: CLI11 would print the negated default as "--no-progress{false}".
    sub->add_flag_callback("--no-progress", [&t] { t.progress = false; }, "Never draw the progress bar (it is drawn only on a TTY)");
    add_persist_option(sub, c.fan);
    sub->add_option("paths", t.paths, paths_help)->required();
    return sub;
}

// persist list|stop: the masters --persist left running, as `ssh -O check|exit` shows ControlMasters.
void add_persist_commands(CLI::App& app, Cli& c) {
    auto* persist = app.add_subcommand("persist", "List or stop the background masters of run/put/get: persist list|stop");
    persist->require_subcommand(1);
    c.plist = persist->add_subcommand("list", "Show running masters (PID TARGET SOCKET); exit 1 if TARGET has none");
    c.plist->add_flag("--json", c.persist_json, "One JSON document: {\"masters\": [...]}");
    c.plist->add_option("target", c.list_which, "Only masters for TARGET, PID or SOCKET");
    c.pstop = persist->add_subcommand("stop", "Stop the masters for TARGET (as listed), PID or SOCKET");
    c.pstop->add_flag("--all", c.stop_all, "Stop every master of this user");
    c.pstop->add_option("target", c.stop_which, "TARGET, PID or SOCKET (repeatable)");
}

// The --persist master: started by tn-exec itself, hidden from help and completion.
void add_master_command(CLI::App& app, Cli& c) {
    auto* master = c.master = app.add_subcommand("__master", "")->group("");
    add_ssh_options(master, c.ssh, c.fan);
    master->add_option("--socket", c.master_socket)->required();
    master->add_option("--idle", c.master_idle)->required();
    master->add_option("--ready-fd", c.master_ready)->required();
    master->add_option("--password-fd", c.ssh.password_opts.fd);
    master->add_option("host", c.master_host)->required();
}

void add_commands(CLI::App& app, Cli& c) {
    tn::cli::add_common_options(app, c.common, false);
    app.require_subcommand(1);
    add_run_command(app, c);
    c.put = add_transfer_command(app, c, c.put_o, "put", "Upload: LOCAL... [user@]host:REMOTE (REMOTE alone with -H)",
                                 "LOCAL... then [user@]host:REMOTE");
    c.get = add_transfer_command(app, c, c.get_o, "get",
                                 "Download: [user@]host:REMOTE... LOCAL (REMOTE... LOCAL with -H)",
                                 "[user@]host:REMOTE... then LOCAL");
    c.fs_cmds = tn::exec::add_fs_commands(app, c.fs_o, c.ssh, [&c](CLI::App* sub) {
        add_ssh_options(sub, c.ssh, c.fan);
        add_persist_option(sub, c.fan);
    });
    c.serve = app.add_subcommand("serve", "For programs: JSON Lines requests on stdin, events and results on stdout");
    add_ssh_options(c.serve, c.ssh, c.fan);
    c.serve->add_flag("--stdio", c.serve_stdio, "Speak JSON Lines on stdin/stdout (the only transport)")->required();
    add_persist_commands(app, c);
    add_master_command(app, c);
}

// After parsing: the checks across options, then the chosen subcommand's work.
int dispatch(Cli& c, const std::vector<std::string>& command, const tn::log::Logger& log) {
    tn::ssh::BufferedRandom padding_rng;  // libssh pads every packet it sends: uploads pay per 32 KiB
    auto& ssh = c.ssh;
    if (ssh.password_opts.from_stdin)
        for (const auto& h : c.fan.host_specs)
            if (h == "@-") throw tn::ParseError("--password-stdin and -H @- both want stdin; use -H @FILE");
    auto* fs_cmd = c.fs_cmds.chosen();
    if (*c.serve && ssh.password_opts.from_stdin)
        throw tn::ParseError("serve --stdio reads requests on stdin: use --password-file or --askpass");
    if (*c.run || *c.put || *c.get || *c.master || *c.serve || fs_cmd)
        ssh.password = tn::exec::PasswordSource::make(ssh.password_opts);
    if (*c.run) {
        if (!command.empty()) c.run_o.args.push_back("--");
        for (auto& w : command) c.run_o.args.push_back(w);
        return tn::exec::run_main(ssh, c.fan, c.run_o, log);
    }
    if (*c.plist) return tn::exec::persist_list_main(c.list_which, c.persist_json, std::cout);
    if (*c.pstop) return tn::exec::persist_stop_main(c.stop_which, c.stop_all, log);
    if (*c.master) return tn::exec::master_main(c.master_host, ssh, c.master_socket, c.master_idle, c.master_ready);
    if (*c.serve) return tn::exec::serve_main(ssh, log);
    if (fs_cmd) return tn::exec::fs_main(fs_cmd->get_name(), ssh, c.fan, c.fs_o, log);
    if (*c.put) return tn::exec::put_main(ssh, c.fan, c.put_o, log);
    return tn::exec::get_main(ssh, c.fan, c.get_o, log);
}

}  // namespace

int main(int argc, char** argv) {
    // A closed stdout must show up as a write error, not kill us mid-transfer with temp files left.
    ::signal(SIGPIPE, SIG_IGN);
    Cli c;
    CLI::App app("Run remote commands and move files over SFTP, on one host or many.", "tn-exec");
    add_commands(app, c);

    int split = command_start(app, argc, argv);
    std::vector<std::string> command(argv + split, argv + argc);
    if (!command.empty() && command.front() == "--") command.erase(command.begin());
    return tn::cli::run(app, c.common, split, argv, [&](const tn::log::Logger& log) { return dispatch(c, command, log); });
}
