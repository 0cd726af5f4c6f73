// Remote command execution: a poll loop over the session socket and the local stdin, libssh
// channel callbacks for exit-status/exit-signal, and an ssh_event pump once the remote sent EOF.
#include "ssh/exec.hpp"

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "base/error.hpp"
#include "base/strings.hpp"
#include "ssh/handles.hpp"
#include "ssh/session.hpp"

namespace tn::ssh {

namespace {

using Clock = std::chrono::steady_clock;

struct ExitState {
    std::optional<int> status;
    std::string signal;
};

void on_exit_status(ssh_session, ssh_channel, int status, void* user) {
    static_cast<ExitState*>(user)->status = status;
}

void on_exit_signal(ssh_session, ssh_channel, const char* sig, int, const char*, const char*, void* user) {
    static_cast<ExitState*>(user)->signal = sig != nullptr ? sig : "?";
}

// Registers the exit-status/exit-signal callbacks on a channel for one scope. libssh keeps a freed
// channel alive until the server's CHANNEL_CLOSE arrives (a --persist master reads it long after
// run_command returned) and would then call through a struct that is gone: the destructor takes the
// callbacks off the channel on every path out, before the channel and the state are destroyed.
class ChannelCallbacks {
public:
    ChannelCallbacks(ssh_channel ch, ExitState& state) : ch_(ch) {
        cb_.userdata = &state;
        cb_.channel_exit_status_function = on_exit_status;
        cb_.channel_exit_signal_function = on_exit_signal;
        ssh_callbacks_init(&cb_);
        if (ssh_set_channel_callbacks(ch_, &cb_) != SSH_OK) throw Error(ExitCode::unavailable, "cannot watch a channel");
    }
    ~ChannelCallbacks() { ssh_remove_channel_callbacks(ch_, &cb_); }
    ChannelCallbacks(const ChannelCallbacks&) = delete;
    ChannelCallbacks& operator=(const ChannelCallbacks&) = delete;

private:
    ssh_channel ch_;
    ssh_channel_callbacks_struct cb_{};
};

struct EventDeleter {
    void operator()(ssh_event_struct* e) const { ssh_event_free(e); }
};

// Milliseconds until the deadline for poll(): -1 without one, at least 0.
int poll_ms(const std::optional<Clock::time_point>& deadline, int cap_ms) {
    if (!deadline) return cap_ms;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()).count();
    if (left <= 0) return 0;
    return cap_ms < 0 ? static_cast<int>(left) : static_cast<int>(std::min<long long>(left, cap_ms));
}

bool expired(const std::optional<Clock::time_point>& deadline) { return deadline && Clock::now() >= *deadline; }

}  // namespace

bool valid_env_name(std::string_view name) {
    if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
    for (char c : name)
        if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
    return true;
}

int signal_number(std::string_view name) {
    static const std::pair<std::string_view, int> table[] = {
        {"HUP", 1},   {"INT", 2},   {"QUIT", 3},  {"ILL", 4},   {"TRAP", 5},  {"ABRT", 6},  {"BUS", 7},
        {"FPE", 8},   {"KILL", 9},  {"USR1", 10}, {"SEGV", 11}, {"USR2", 12}, {"PIPE", 13}, {"ALRM", 14},
        {"TERM", 15}, {"XCPU", 24}, {"XFSZ", 25}, {"VTALRM", 26}, {"PROF", 27}, {"SYS", 31}};
    for (auto& [n, v] : table)
        if (n == name) return v;
    return 0;
}

int exit_code_for(const ExecResult& r) {
    if (r.timed_out) return 124;
    if (!r.signal.empty()) {
        int n = signal_number(r.signal);
        return n > 0 ? 128 + n : 255;
    }
    if (r.exit_status) return *r.exit_status & 0xff;
    return 255;  // the channel closed without telling how the command ended
}

std::string compose_command(const ExecRequest& req, const std::vector<std::string>& refused_env) {
    std::string prefix;
    for (const auto& name : refused_env)
        for (const auto& [k, v] : req.env)
            if (k == name) prefix += "export " + k + "=" + shell_quote(v) + "; ";
    // `|| exit` so a missing directory never runs the command somewhere else.
    if (!req.cwd.empty()) prefix += "cd " + shell_quote(req.cwd) + " || exit 1; ";
    return prefix + req.command;
}

std::string with_remote_deadline(const std::string& command, std::chrono::milliseconds timeout) {
    auto ms = timeout.count();
    std::string secs = std::to_string(ms / 1000) + "." + std::to_string(1000 + ms % 1000).substr(1);
    // coreutils timeout(1) kills the command's whole process group; stdin stays the channel's.
    return "if command -v timeout >/dev/null 2>&1; then exec timeout -k 2 " + secs + " \"${SHELL:-/bin/sh}\" -c " +
           shell_quote(command) + "; else " + command + "\nfi";
}

namespace {

ChannelPtr open_channel(Session& session) {
    ssh_session s = session.raw();
    ChannelPtr ch(ssh_channel_new(s));
    if (!ch || ssh_channel_open_session(ch.get()) != SSH_OK)
        throw Error(ExitCode::unavailable,
                    "cannot open a session channel on " + session.endpoint() + ": " + ssh_get_error(s));
    return ch;
}

}  // namespace

ChannelPtr open_exec_channel(Session& session) {
    try {
        return open_channel(session);
    } catch (const Error&) {
        if (ssh_is_connected(session.raw())) return nullptr;
        throw;
    }
}

bool session_connected(Session& session) { return ssh_is_connected(session.raw()) != 0; }

ExecResult run_command(Session& session, const ExecRequest& req, const ExecSinks& sinks) {
    return run_command(session, nullptr, req, sinks);
}

namespace {

// A channel opened ahead: read what the server sent while it waited (a close, say) before using it;
// a new channel when it is gone (or there was none).
ChannelPtr usable_channel(Session& session, ChannelPtr ready) {
    if (ready && (ssh_channel_poll(ready.get(), 0) == SSH_ERROR || ssh_channel_is_closed(ready.get()) ||
                  ssh_channel_is_eof(ready.get())))
        ready.reset();
    return ready ? std::move(ready) : open_channel(session);
}

// One run of a command on a channel, cut into its steps. The state the poll loops share lives here
// (the read buffer too), so a loop turn copies and allocates nothing more than it did as one function.
class CommandRun {
public:
    CommandRun(Session& session, ChannelPtr ch, const ExecRequest& req, const ExecSinks& sinks)
        : session_(session), s_(session.raw()), ch_(std::move(ch)), req_(req), sinks_(sinks),
          callbacks_(ch_.get(), state_) {}

    ExecResult run() {
        request_env_and_pty();
        send_exec();
        if (req_.timeout) deadline_ = Clock::now() + *req_.timeout;
        stdin_open_ = req_.stdin_fd >= 0;
        if (!stdin_open_ && gate_open()) send_eof();
        // Phase 1: output until the remote's EOF, while forwarding stdin.
        pump_until_eof();
        drain();
        if (!expired(limit())) wait_for_exit();
        settle();
        if (req_.preamble != nullptr && !req_.preamble->done())
            if (auto rest = req_.preamble->flush(); !rest.empty()) sinks_.err(rest);
        return finish();
    }

private:
    Error lost(const std::string& what) const {
        return Error(ExitCode::unavailable, what + " on " + session_.endpoint() + ": " + ssh_get_error(s_));
    }

    void request_env_and_pty() {
        for (const auto& [k, v] : req_.env) {
            if (!valid_env_name(k)) throw Error(ExitCode::usage, "invalid environment variable name '" + k + "'");
            // sshd accepts only names in its AcceptEnv list; the rest go in as `export` prefixes.
            if (ssh_channel_request_env(ch_.get(), k.c_str(), v.c_str()) != SSH_OK) {
                if (!ssh_is_connected(s_)) throw lost("connection lost");
                result_.env_fallback.push_back(k);
            }
        }
        if (req_.pty_size && ssh_channel_request_pty_size(ch_.get(), req_.term.c_str(), req_.pty_size->first,
                                                          req_.pty_size->second) != SSH_OK)
            throw lost("PTY request refused");
    }

    void send_exec() {
        cmd_ = compose_command(req_, result_.env_fallback);
        // Only OpenSSH (>= 7.9) is known to deliver the TERM we send at the deadline; Dropbear ignores it
        // and the command would outlive us. Elsewhere the remote side enforces the deadline itself.
        if (req_.timeout && ssh_get_openssh_version(s_) == 0) cmd_ = with_remote_deadline(cmd_, *req_.timeout);
        // exec goes out without waiting for sshd's reply (in nonblocking mode libssh sends the request and
        // returns SSH_AGAIN), so stdin's EOF and the wait for output follow at once: the round trip that
        // OpenSSH's client also saves. settle() collects the reply later by calling it again.
        ssh_set_blocking(s_, 0);
        int exec_rc = ssh_channel_request_exec(ch_.get(), cmd_.c_str());
        ssh_set_blocking(s_, 1);
        if (exec_rc == SSH_ERROR) throw lost("exec request refused");
        exec_pending_ = exec_rc == SSH_AGAIN;
    }

    // Until the reply is collected, libssh would swallow the channel's next request (a signal):
    // settle before sending one. A refusal ends the run; sshd keeps such a channel open and silent.
    void settle() {
        if (!exec_pending_) return;
        ssh_set_blocking(s_, 0);
        int rc = ssh_channel_request_exec(ch_.get(), cmd_.c_str());
        ssh_set_blocking(s_, 1);
        if (rc == SSH_AGAIN) return;
        exec_pending_ = false;
        if (rc != SSH_OK) throw lost("exec request refused");
    }

    std::optional<Clock::time_point> limit() const {
        if (deadline_ && grace_) return std::min(*deadline_, *grace_);
        return grace_ ? grace_ : deadline_;
    }

    // After a local SIGINT/SIGTERM: the signal goes to the remote command, which gets 2 s to end.
    void check_interrupt(short revents) {
        if (interrupted_.empty() && (revents & POLLIN)) {
            settle();
            interrupted_ = req_.interrupt_signal ? req_.interrupt_signal() : "INT";
            ssh_channel_request_send_signal(ch_.get(), interrupted_.c_str());
            grace_ = Clock::now() + std::chrono::seconds(2);
        }
    }

    void poll_interrupt() {
        if (req_.interrupt_fd < 0 || !interrupted_.empty()) return;
        pollfd p{req_.interrupt_fd, POLLIN, 0};
        if (::poll(&p, 1, 0) > 0) check_interrupt(p.revents);
    }

    // With a preamble (sudo -S), stdin is the prompt's answer first: nothing of ours, not even EOF,
    // goes out before it is done.
    bool gate_open() const { return req_.preamble == nullptr || req_.preamble->done(); }

    void send_eof() {
        if (!eof_sent_) ssh_channel_send_eof(ch_.get());
        eof_sent_ = true;
    }

    void reply(std::string_view d) {
        if (ssh_channel_write(ch_.get(), d.data(), static_cast<uint32_t>(d.size())) != static_cast<int>(d.size()))
            throw lost("cannot answer the remote prompt");
    }

    void on_err(std::string_view d) {
        if (gate_open()) return sinks_.err(d);
        auto step = req_.preamble->on_stderr(d, [this](std::string_view r) { reply(r); });
        if (!step.err.empty()) sinks_.err(step.err);
        if (step.close_stdin) stdin_open_ = false;
        if (!stdin_open_ && (step.close_stdin || gate_open())) send_eof();
    }

    std::size_t drain() {
        std::size_t total = 0;
        for (bool more = true; more;) {
            more = false;
            for (int is_err = 0; is_err < 2; ++is_err) {
                int n = ssh_channel_read_nonblocking(ch_.get(), buf_, sizeof buf_, is_err);
                if (n == SSH_ERROR) throw lost("connection lost");
                if (n > 0) {
                    std::string_view d(buf_, static_cast<std::size_t>(n));
                    if (is_err) on_err(d);
                    else sinks_.out(d);
                    total += static_cast<std::size_t>(n);
                    more = true;
                }
            }
        }
        return total;
    }

    void follow_window_change() {
        char info[128 * 4];
        [[maybe_unused]] auto got = ::read(req_.winch_fd, info, sizeof info);  // drain the signalfd
        if (req_.window_size) {
            auto [cols, rows] = req_.window_size();
            ssh_channel_change_pty_size(ch_.get(), cols, rows);
        }
    }

    void forward_stdin() {
        ssize_t n = ::read(req_.stdin_fd, buf_, sizeof buf_);
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            throw Error(ExitCode::io, std::string("cannot read stdin: ") + std::strerror(errno));
        if (n == 0) {
            stdin_open_ = false;
            send_eof();
        } else if (n > 0) {
            // Blocking write: waits for the remote window while libssh keeps buffering output.
            if (ssh_channel_write(ch_.get(), buf_, static_cast<uint32_t>(n)) != n) throw lost("cannot forward stdin");
        }
    }

    void pump_until_eof() {
        while (!ssh_channel_is_eof(ch_.get()) && !ssh_channel_is_closed(ch_.get())) {
            if (expired(limit())) break;
            pollfd fds[4] = {{ssh_get_fd(s_), POLLIN, 0}, {-1, POLLIN, 0}, {-1, POLLIN, 0}, {req_.winch_fd, POLLIN, 0}};
            if (stdin_open_ && gate_open()) fds[1].fd = req_.stdin_fd;
            if (interrupted_.empty()) fds[2].fd = req_.interrupt_fd;  // poll ignores negative fds
            int rc = ::poll(fds, 4, poll_ms(limit(), 1000));
            if (rc < 0 && errno != EINTR) throw Error(ExitCode::io, std::string("poll: ") + std::strerror(errno));
            drain();
            settle();
            if (fds[2].fd >= 0) check_interrupt(fds[2].revents);
            // A window change goes out before the keystrokes typed after it.
            if (fds[3].fd >= 0 && (fds[3].revents & POLLIN)) follow_window_change();
            if (stdin_open_ && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) forward_stdin();
            if (!ssh_is_connected(s_)) throw lost("connection lost");
        }
    }

    // Phase 2: after EOF, ssh_channel_poll no longer pumps packets; an ssh_event does, until the
    // exit-status/exit-signal request or the channel close arrives.
    void wait_for_exit() {
        std::unique_ptr<ssh_event_struct, EventDeleter> ev(ssh_event_new());
        if (!ev || ssh_event_add_session(ev.get(), s_) != SSH_OK) throw lost("cannot poll");
        while (!state_.status && state_.signal.empty() && !ssh_channel_is_closed(ch_.get()) && !expired(limit())) {
            // Short slices so a local interrupt is noticed while the remote keeps quiet.
            if (ssh_event_dopoll(ev.get(), poll_ms(limit(), req_.interrupt_fd >= 0 ? 100 : 1000)) == SSH_ERROR) {
                ssh_event_remove_session(ev.get(), s_);
                throw lost("connection lost");
            }
            drain();
            settle();
            poll_interrupt();
        }
        ssh_event_remove_session(ev.get(), s_);
    }

    ExecResult finish() {
        if (!state_.status && state_.signal.empty() && expired(limit())) {
            if (!interrupted_.empty() && !expired(deadline_)) {
                result_.signal = interrupted_;  // it did not end in the grace period: we stop waiting
                return std::move(result_);
            }
            // Ask sshd to signal the command (OpenSSH >= 7.9 honours it), then close the channel.
            result_.timed_out = true;
            settle();
            ssh_channel_request_send_signal(ch_.get(), "TERM");
            return std::move(result_);
        }
        result_.exit_status = state_.status;
        result_.signal = state_.signal;
        return std::move(result_);
    }

    Session& session_;
    ssh_session s_;
    ChannelPtr ch_;
    const ExecRequest& req_;
    const ExecSinks& sinks_;
    ExitState state_;
    ChannelCallbacks callbacks_;  // declared after ch_ and state_: removed before they go
    ExecResult result_;
    std::string cmd_;
    bool exec_pending_ = false;
    std::optional<Clock::time_point> deadline_;
    std::optional<Clock::time_point> grace_;
    std::string interrupted_;
    bool stdin_open_ = false;
    bool eof_sent_ = false;
    char buf_[65536];
};

}  // namespace

ExecResult run_command(Session& session, ChannelPtr ready, const ExecRequest& req, const ExecSinks& sinks) {
    CommandRun run(session, usable_channel(session, std::move(ready)), req, sinks);
    return run.run();
}

}  // namespace tn::ssh
