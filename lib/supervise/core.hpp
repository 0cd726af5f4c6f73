// Supervisor: the tn-watch child state machine without I/O. Events and `now` go in; actions and the
// next deadline come out, so every restart and kill decision is unit-tested with fake time.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "supervise/backoff.hpp"

namespace tn::supervise {

// How a child ended, as waitpid reports it (or a spawn that never got to exec).
struct ExitStatus {
    int code = 0;        // exit code when !signaled
    int signal = 0;      // terminating signal when signaled
    bool signaled = false;
    bool spawn_failed = false;  // exec failed; code is 127 as a shell would say
    static ExitStatus from_wait_status(int wstatus);
    static ExitStatus exited(int code) { return ExitStatus{code, 0, false, false}; }
    static ExitStatus killed(int sig) { return ExitStatus{0, sig, true, false}; }
    bool success() const { return !signaled && !spawn_failed && code == 0; }
    std::string str() const;  // "exit 3", "signal 9 (SIGKILL)", "spawn failed"
    // The code a shell would report: 128+signal for a signal.
    int shell_code() const { return signaled ? 128 + signal : code; }
};

// What the policy (or the default) says after an exit. `why` explains a default "no restart" for the log.
struct Decision {
    bool restart = true;
    Duration delay{0};
    std::string why;
};

// Exit codes the default does not restart after, like systemd's RestartPreventExitStatus: restarting
// cannot fix a refused key or a broken config, it only hammers the server and floods the log.
constexpr int exit_auth_refused = 77, exit_config_error = 78;

enum class State {
    idle,      // not started yet
    running,   // a child is up
    stopping,  // SIGTERM sent to the group, waiting for the exit (SIGKILL at the deadline)
    waiting,   // child gone, restart at the deadline
    deciding,  // child gone (crashed, or stopped for a restart), waiting for decide()
    held,      // stopped on request of the policy; start() or restart() brings it back
    done,      // shut down or the policy gave up: the supervisor exits
};
const char* state_name(State s);

struct Action {
    enum class Kind { spawn, signal_group, finish };
    Kind kind;
    int signal = 0;  // for signal_group
    static Action spawn() { return {Kind::spawn, 0}; }
    static Action kill(int sig) { return {Kind::signal_group, sig}; }
    static Action finish() { return {Kind::finish, 0}; }
    bool operator==(const Action&) const = default;
};
using Actions = std::vector<Action>;

struct Settings {
    BackoffSettings backoff;
    Duration grace{1500};  // SIGTERM -> SIGKILL; SPEC §2: a stop completes within 2 s
    // No spawn comes sooner than this after the previous child ended, whatever the policies answer:
    // a policy returning delay 0 (or --backoff-initial 0) must not turn into a fork loop.
    Duration min_gap{100};
};

// What status reports; restarts counts every spawn after the first.
struct Snapshot {
    State state = State::idle;
    int pid = 0;
    int restarts = 0;
    std::optional<ExitStatus> last_exit;
    std::optional<Clock::time_point> child_started;
};

class Supervisor {
public:
    explicit Supervisor(Settings s = {});

    // The first start; further starts happen through exits, timers and requests.
    Actions start(Clock::time_point now);
    // The runner reports the result of an Action::spawn.
    void spawned(int pid, Clock::time_point now);
    // The runner reports that spawn failed (exec error): handled as an unexpected exit with status 127.
    Actions spawn_failed(Clock::time_point now);
    // The child was reaped. Returns actions; when state() becomes `deciding` (an unexpected exit, or the
    // exit of a child stopped for a restart), the runner asks the policies (seeded with
    // default_decision()) and calls decide(). Every restart passes there: the policies see it, their
    // limits apply, and the delay is the backoff's.
    Actions exited(ExitStatus status, Clock::time_point now);
    Decision default_decision(Clock::time_point now) const;
    Actions decide(Decision d, Clock::time_point now);
    // True while deciding on a child that was stopped because a restart was requested.
    bool restart_requested() const { return requested_; }

    // Requests: shut everything down (SIGTERM/SIGINT, `tn-watch stop`); stop and hold (policy);
    // start from held (policy; no sooner than min_gap after the last exit); restart (policy: a running
    // child is stopped, then decided on like any exit; a held child is released; otherwise a restart is
    // already on its way and the request changes nothing).
    Actions shutdown(Clock::time_point now);
    Actions hold(Clock::time_point now);
    Actions release(Clock::time_point now);
    Actions restart(Clock::time_point now);

    // Deadlines reached: restart after the delay, SIGKILL after the grace period.
    Actions timer(Clock::time_point now);
    std::optional<Clock::time_point> next_deadline() const;

    State state() const { return state_; }
    Snapshot snapshot() const;
    int pid() const { return pid_; }
    int restarts() const { return restarts_; }
    bool finished() const { return state_ == State::done; }
    // The child's exit code the supervisor should end with when it gives up (0 after a shutdown).
    int final_code() const { return final_code_; }

private:
    // Why a child is being stopped: decides what happens when it exits.
    enum class After { none, shutdown, hold, restart };
    Actions begin_stop(After after, Clock::time_point now);
    Actions spawn_now();
    // Spawns now, or enters `waiting` until `at` when that is later.
    Actions spawn_at(Clock::time_point at, Clock::time_point now);

    Settings s_;
    Backoff backoff_;
    State state_ = State::idle;
    After after_ = After::none;
    int pid_ = 0;
    int spawns_ = 0;
    int restarts_ = 0;
    int final_code_ = 0;
    bool killed_ = false;  // SIGKILL already sent in this stop
    bool requested_ = false;  // the child being decided on was stopped for a requested restart
    std::optional<Clock::time_point> last_end_;  // when the last child ended: min_gap counts from there
    std::optional<ExitStatus> last_exit_;
    Clock::time_point child_started_{};
    Duration last_run_{0};
    std::optional<Clock::time_point> restart_at_;
    std::optional<Clock::time_point> kill_at_;
};

}  // namespace tn::supervise
