// The supervisor state machine: what to do when a child starts, exits, or a deadline or request comes.
#include "supervise/core.hpp"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include <algorithm>

namespace tn::supervise {

ExitStatus ExitStatus::from_wait_status(int wstatus) {
    if (WIFSIGNALED(wstatus)) return killed(WTERMSIG(wstatus));
    return exited(WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 0);
}

std::string ExitStatus::str() const {
    if (spawn_failed) return "spawn failed";
    if (!signaled) return "exit " + std::to_string(code);
    std::string s = "signal " + std::to_string(signal);
    if (const char* abbrev = sigabbrev_np(signal)) s += std::string(" (SIG") + abbrev + ")";
    return s;
}

const char* state_name(State s) {
    switch (s) {
        case State::idle: return "idle";
        case State::running: return "running";
        case State::stopping: return "stopping";
        case State::waiting: return "waiting";
        case State::deciding: return "deciding";
        case State::held: return "held";
        case State::done: return "done";
    }
    return "unknown";
}

Supervisor::Supervisor(Settings s) : s_(s), backoff_(s.backoff) {}

Actions Supervisor::spawn_now() {
    state_ = State::running;
    after_ = After::none;
    requested_ = false;
    restart_at_.reset();
    kill_at_.reset();
    killed_ = false;
    if (spawns_ > 0) ++restarts_;
    ++spawns_;
    return {Action::spawn()};
}

Actions Supervisor::spawn_at(Clock::time_point at, Clock::time_point now) {
    if (last_end_ && at < *last_end_ + s_.min_gap) at = *last_end_ + s_.min_gap;
    if (at <= now) return spawn_now();
    state_ = State::waiting;
    requested_ = false;
    restart_at_ = at;
    return {};
}

Actions Supervisor::start(Clock::time_point) {
    if (state_ != State::idle) return {};
    return spawn_now();
}

void Supervisor::spawned(int pid, Clock::time_point now) {
    pid_ = pid;
    child_started_ = now;
}

Actions Supervisor::spawn_failed(Clock::time_point now) {
    child_started_ = now;
    ExitStatus st = ExitStatus::exited(127);
    st.spawn_failed = true;
    return exited(st, now);
}

Actions Supervisor::exited(ExitStatus status, Clock::time_point now) {
    last_exit_ = status;
    last_run_ = std::chrono::duration_cast<Duration>(now - child_started_);
    last_end_ = now;
    pid_ = 0;
    kill_at_.reset();
    killed_ = false;
    if (state_ == State::running) {
        state_ = State::deciding;
        requested_ = false;
        return {};
    }
    if (state_ != State::stopping) return {};  // a late report; nothing is running that it could concern
    switch (after_) {
        case After::restart:
            // Decided on like any exit, so the limits of every policy and the backoff see this restart.
            state_ = State::deciding;
            after_ = After::none;
            requested_ = true;
            return {};
        case After::hold: state_ = State::held; after_ = After::none; return {};
        case After::shutdown:
        case After::none: state_ = State::done; final_code_ = 0; return {Action::finish()};
    }
    return {};
}

Decision Supervisor::default_decision(Clock::time_point) const {
    Decision d{true, backoff_.peek(last_run_), {}};
    // Like systemd's Restart=on-failure: a requested restart or a failure restarts; a clean exit and the
    // codes no restart can fix end the supervisor.
    if (requested_ || !last_exit_ || last_exit_->signaled || last_exit_->spawn_failed) return d;
    switch (last_exit_->code) {
        case 0: return Decision{false, Duration(0), "the child exited 0 (finished): not restarting it"};
        case exit_auth_refused:
            return Decision{false, Duration(0),
                            "the child exited 77 (authentication or permission refused): not restarting it, as "
                            "restarting cannot fix that; fix the key or the permissions, or let a policy restart it"};
        case exit_config_error:
            return Decision{false, Duration(0),
                            "the child exited 78 (configuration error): not restarting it; fix the configuration, "
                            "or let a policy restart it"};
        default: return d;
    }
}

Actions Supervisor::decide(Decision d, Clock::time_point now) {
    if (state_ != State::deciding) return {};
    if (!d.restart) {
        state_ = State::done;
        requested_ = false;
        final_code_ = last_exit_ ? last_exit_->shell_code() : 0;
        return {Action::finish()};
    }
    backoff_.next(last_run_);  // the streak advances even when a policy picked its own delay
    return spawn_at(now + std::max(d.delay, Duration(0)), now);
}

Actions Supervisor::begin_stop(After after, Clock::time_point now) {
    state_ = State::stopping;
    after_ = after;
    killed_ = false;
    kill_at_ = now + s_.grace;
    return {Action::kill(SIGTERM)};
}

Actions Supervisor::shutdown(Clock::time_point now) {
    switch (state_) {
        case State::running: return begin_stop(After::shutdown, now);
        case State::stopping:
            // A second request while already shutting down: the user is impatient, do not wait for grace.
            if (after_ == After::shutdown && !killed_) {
                killed_ = true;
                kill_at_.reset();
                return {Action::kill(SIGKILL)};
            }
            after_ = After::shutdown;
            return {};
        case State::done: return {};
        default:
            state_ = State::done;
            final_code_ = 0;
            restart_at_.reset();
            return {Action::finish()};
    }
}

Actions Supervisor::hold(Clock::time_point now) {
    switch (state_) {
        case State::running: return begin_stop(After::hold, now);
        case State::stopping:
            if (after_ == After::restart) after_ = After::hold;
            return {};
        case State::waiting:
        case State::deciding:
            state_ = State::held;
            requested_ = false;
            restart_at_.reset();
            return {};
        default: return {};
    }
}

Actions Supervisor::release(Clock::time_point now) {
    // From `waiting` nothing changes: a restart is already due at the backoff's deadline, and starting
    // early would let a policy skip the backoff.
    if (state_ == State::held) return spawn_at(now, now);
    return {};
}

Actions Supervisor::restart(Clock::time_point now) {
    switch (state_) {
        case State::running: return begin_stop(After::restart, now);
        case State::stopping:
            if (after_ == After::hold) after_ = After::restart;
            return {};
        case State::held: return spawn_at(now, now);
        default: return {};  // waiting, deciding: the restart is on its way through the backoff
    }
}

Actions Supervisor::timer(Clock::time_point now) {
    if (state_ == State::waiting && restart_at_ && *restart_at_ <= now) return spawn_now();
    if (state_ == State::stopping && !killed_ && kill_at_ && *kill_at_ <= now) {
        killed_ = true;
        kill_at_.reset();
        return {Action::kill(SIGKILL)};
    }
    return {};
}

std::optional<Clock::time_point> Supervisor::next_deadline() const {
    if (state_ == State::waiting) return restart_at_;
    if (state_ == State::stopping && !killed_) return kill_at_;
    return std::nullopt;
}

Snapshot Supervisor::snapshot() const {
    Snapshot s;
    s.state = state_;
    s.pid = pid_;
    s.restarts = restarts_;
    s.last_exit = last_exit_;
    if (pid_ != 0) s.child_started = child_started_;
    return s;
}

}  // namespace tn::supervise
