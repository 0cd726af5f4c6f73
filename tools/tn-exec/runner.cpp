// tn-exec run, session setup and the worker pool that fans a job out over many hosts.
#include "runner.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <iostream>
#include <thread>

#include "base/error.hpp"
#include "base/signals.hpp"
#include "base/strings.hpp"
#include "interrupt.hpp"
#include "persist.hpp"
#include "sudo.hpp"
#include "ssh/exec.hpp"
#include "ssh/jump.hpp"
#include "tty.hpp"

namespace tn::exec {

namespace {

ssh::Session login(ssh::Session s, const Target& t) {
    // Keys first, as ssh does; a password only when they are refused (an askpass program runs only then).
    if (s.authenticate({.agent = true, .identities = true, .password = std::nullopt})) return s;
    if (!t.password)
        throw Error(ExitCode::no_perm, "authentication refused by " + s.endpoint() +
                                           " (tried ssh-agent and identity files; run tn-keysetup to install a key, "
                                           "or give a password source: --password-stdin, --password-file, --askpass)");
    auto pw = t.password->get(s.user() + "@" + s.host() + "'s password: ");
    // One try: a wrong password is not retried (no lockout loop), it is 77 at once.
    if (s.authenticate({.agent = false, .identities = false, .password = *pw})) return s;
    throw PasswordError("password refused by " + s.endpoint());
}

}  // namespace

ssh::Session open_session(const Target& t) {
    if (!t.jump) return login(ssh::Session::connect(t.client), t);
    // The jump host first, its key checked and logged in as any host; a failure there names it.
    std::optional<ssh::Session> jump;
    try {
        jump.emplace(login(ssh::Session::connect(*t.jump), t));
    } catch (const PasswordError& e) {
        throw PasswordError("jump host " + t.jump_label + ": " + e.what());
    } catch (const Error& e) {
        throw Error(e.code(), "jump host " + t.jump_label + ": " + e.what());
    }
    auto s = ssh::Session::connect(t.client, [&](const std::string& host, int port) {
        auto hop = std::make_shared<ssh::Hop>(std::move(*jump), host, port);
        int fd = hop->socket();
        return std::pair<int, std::shared_ptr<void>>(fd, std::move(hop));
    });
    return login(std::move(s), t);
}

int for_each_host(const std::vector<Target>& targets, int parallel, Output& out, const log::Logger& log,
                  const HostJob& job) {
    std::atomic<std::size_t> next{0};
    std::vector<int> codes(targets.size(), 0);
    bool many = targets.size() > 1 || out.mode() != OutputMode::raw;
    auto worker = [&] {
        for (;;) {
            std::size_t i = next.fetch_add(1);
            if (i >= targets.size()) return;
            const auto& t = targets[i];
            auto start = std::chrono::steady_clock::now();
            std::string error;
            int code = 255;
            {
                HostOutput ho(out, t.label);
                try {
                    code = job(t, ho);
                } catch (const PasswordError& e) {
                    error = e.what();
                    code = to_int(e.code());
                } catch (const Error& e) {
                    error = e.what();
                } catch (const ParseError& e) {
                    error = e.what();
                } catch (const std::exception& e) {
                    error = std::string("internal error: ") + e.what();
                }
            }
            auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
            if (!error.empty()) {
                // SPEC: every failure of tn-exec's own is 255, as with ssh; the message says which.
                // A refused or missing password is 77 (PasswordError), so scripts can tell it apart.
                if (code != to_int(ExitCode::no_perm)) code = 255;
                if (many) log.error(t.label, ": ", error);
                else log.error(error);
            }
            codes[i] = code;
            out.summary(t.label, code, ms, error);
        }
    };
    std::size_t n = std::clamp<std::size_t>(static_cast<std::size_t>(std::max(parallel, 1)), 1, targets.size());
    if (n == 1) {
        worker();  // one thread: stdin forwarding and signals stay on the main thread
    } else {
        std::vector<std::thread> pool;
        for (std::size_t k = 0; k < n; ++k) pool.emplace_back(worker);
        for (auto& th : pool) th.join();
    }
    int worst = 0;
    for (int c : codes) {
        if (c == 255) return 255;
        worst = std::max(worst, c);
    }
    return worst;
}

namespace {

std::vector<Target> resolve_targets(const SshOptions& ssh, const FanOut& fan, std::vector<std::string>& args,
                                    bool& stdin_taken) {
    std::vector<Target> targets;
    stdin_taken = false;
    if (fan.host_specs.empty()) {
        if (args.empty() || args.front() == "--") throw ParseError("no host given ([user@]host or -H)");
        targets.push_back(make_target(args.front(), ssh));
        args.erase(args.begin());
    } else {
        for (const auto& h : fan.host_specs) stdin_taken |= h == "@-";
        targets = fan_targets(expand_hosts(fan.host_specs, std::cin), ssh);
    }
    return targets;
}

// The request every host gets: the command (CMD words or --shell), --env, --cwd, --timeout.
ssh::ExecRequest base_request(const RunOptions& o, const std::vector<std::string>& args) {
    ssh::ExecRequest req;
    if (!o.shell.empty()) {
        if (!args.empty()) throw ParseError("--shell takes the whole command; do not add CMD words");
        req.command = o.shell;
    } else {
        if (args.empty()) throw ParseError("no command given (CMD [ARG...] or --shell STRING)");
        req.command = shell_join(args);
    }
    for (const auto& kv : o.env) req.env.push_back(parse_env(kv));
    req.cwd = o.cwd;
    if (o.timeout < 0 || !std::isfinite(o.timeout)) throw ParseError("--timeout must be a positive number of seconds");
    if (o.timeout > 0) req.timeout = std::chrono::milliseconds(static_cast<long long>(o.timeout * 1000));
    return req;
}

// --sudo: wraps the request's command in sudo; returns the token that marks sudo's password prompt.
std::string wrap_in_sudo(ssh::ExecRequest& req, const RunOptions& o, const SshOptions& ssh) {
    if (o.tty) throw ParseError("--sudo and --tty do not go together (a PTY would echo the password)");
    // sudo resets the environment: --env and --cwd apply inside its shell.
    std::vector<std::string> names;
    for (const auto& kv : req.env) names.push_back(kv.first);
    auto inner = ssh::compose_command(req, names);
    req.env.clear();
    req.cwd.clear();
    std::string token = sudo_token();
    req.command = sudo_command(inner, *o.sudo, token, ssh.password != nullptr);
    return token;
}

// --tty: the PTY's size and TERM, and the window changes followed; the local terminal goes raw when
// stdin is forwarded (restored when `raw` goes).
void request_tty(ssh::ExecRequest& req, const SignalFd& winch, std::optional<RawTerminal>& raw) {
    int tfd = ::isatty(STDIN_FILENO) ? STDIN_FILENO : STDOUT_FILENO;
    req.pty_size = window_size(tfd);
    if (const char* term = std::getenv("TERM"); term != nullptr && *term != '\0') req.term = term;
    req.winch_fd = winch.fd();
    req.window_size = [tfd] { return window_size(tfd); };
    if (req.stdin_fd >= 0) raw.emplace(STDIN_FILENO);
}

// One host's run without --persist: its own session, sudo's prompt answered on it when --sudo.
int run_on_host(const Target& t, const ssh::ExecRequest& req, const ssh::ExecSinks& sinks, const RunOptions& o,
                const std::string& sudo_token_, const log::Logger& log) {
    auto session = open_session(t);
    auto host_req = req;
    std::optional<SudoGate> gate;
    if (o.sudo) {
        SudoGate::PasswordFn pw;
        if (t.password)
            pw = [&] { return t.password->get("[sudo] password for " + session.user() + "@" + session.host() + ": "); };
        host_req.preamble = &gate.emplace(sudo_token_, std::move(pw));
    }
    auto r = ssh::run_command(session, host_req, sinks);
    if (gate && !gate->started() && r.exit_status && !r.timed_out && r.signal.empty()) {
        auto f = sudo_failure(*gate, *r.exit_status, session.endpoint(), t.password != nullptr);
        if (f.code == to_int(ExitCode::no_perm)) throw PasswordError(f.message);
        throw Error(ExitCode::unavailable, f.message);
    }
    for (const auto& name : r.env_fallback)
        log.debug(t.label, ": sshd refused to set ", name, " (not in AcceptEnv); exported it in the command instead");
    if (r.timed_out) log.warn(t.label, ": timed out after ", o.timeout, " s; sent TERM to the remote command");
    return ssh::exit_code_for(r);
}

}  // namespace

int run_main(const SshOptions& ssh, const FanOut& fan, const RunOptions& o, const log::Logger& log) {
    auto args = o.args;
    bool stdin_taken = false;
    auto targets = resolve_targets(ssh, fan, args, stdin_taken);
    if (!args.empty() && args.front() == "--") args.erase(args.begin());

    ssh::ExecRequest req = base_request(o, args);
    // Stdin goes to one host only: with many hosts there is no sensible split (pssh does the same).
    req.stdin_fd = (!o.no_stdin && targets.size() == 1 && !stdin_taken) ? 0 : -1;
    std::string sudo_token_;
    if (o.sudo) sudo_token_ = wrap_in_sudo(req, o, ssh);

    // SIGWINCH blocked before Interrupts starts its watcher thread, which would otherwise inherit it
    // unblocked and take (and so discard) every window change.
    std::optional<SignalFd> winch;
    if (o.tty) {
        if (targets.size() != 1 || fan.persist > 0) throw ParseError("--tty works with one host, without --persist");
        winch.emplace(std::initializer_list<int>{SIGWINCH});
    }
    Interrupts interrupts;  // before the worker threads, which inherit the blocked signals
    req.interrupt_fd = interrupts.fd();
    req.interrupt_signal = [&] { return interrupts.signal_name(); };
    std::optional<RawTerminal> raw;  // restored when run_main returns or throws
    if (o.tty) request_tty(req, *winch, raw);

    // -H always prefixes, one host or many: a script's parsing must not depend on the list's length.
    Output out(fan.json ? OutputMode::json : fan.host_specs.empty() ? OutputMode::raw : OutputMode::prefixed);
    return for_each_host(targets, fan.parallel, out, log, [&](const Target& t, HostOutput& ho) {
        ssh::ExecSinks sinks{[&](std::string_view d) { ho.out(d); }, [&](std::string_view d) { ho.err(d); }};
        if (fan.persist > 0) {
            PersistSudo sudo{sudo_token_, t.password};
            return persist_run(t, ssh, fan.persist, req, sinks, o.sudo ? &sudo : nullptr);
        }
        return run_on_host(t, req, sinks, o, sudo_token_, log);
    });
}

}  // namespace tn::exec
