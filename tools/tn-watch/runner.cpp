// The supervisor loop: carries out what lib/supervise decides and what the Lua policies ask for.
#include "runner.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>

#include "base/error.hpp"
#include "base/proc_cmdline.hpp"
#include "base/runtime_dir.hpp"
#include "base/signals.hpp"
#include "base/strings.hpp"
#include "child.hpp"
#include "instance.hpp"
#include "log_file.hpp"
#include "policy/engine.hpp"
#include "supervise/core.hpp"

namespace tn::watch {

using supervise::Clock;

Ready::~Ready() {
    if (fd_ >= 0) ::close(fd_);
}
void Ready::send(const std::string& s) {
    if (fd_ < 0) return;
    (void)::write(fd_, s.data(), s.size());
    ::close(fd_);
    fd_ = -1;
}
void Ready::ok(long pid) { send("ok " + std::to_string(pid) + "\n"); }
void Ready::busy() { send("busy\n"); }
void Ready::fail(int code, const std::string& msg) { send("err " + std::to_string(code) + " " + msg + "\n"); }

namespace {

long long wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// A restart after a failed exec waits at least this long, whatever the policy says: the command is
// missing, and retrying at once would spin.
constexpr supervise::Duration min_spawn_retry{1000};
// Bytes read from one pipe per wakeup, so a chatty stdout cannot starve stderr or signals.
constexpr std::size_t read_chunk = 64 * 1024;

class Runner {
public:
    Runner(const RunPlan& plan, bool detached, const log::Logger& log)
        : plan_(plan), detached_(detached), log_(log), paths_(Paths::of(plan.name, true)), core_(plan.settings) {}

    ~Runner() {
        // Only reached with a live child when an exception escapes the loop: never leave it behind.
        if (pid_ > 0) {
            ::kill(-pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }

    int run(Ready& ready) {
        lock_ = InstanceLock::acquire(paths_.lock);
        if (!lock_) {
            ready.busy();
            auto st = read_status(paths_.status);
            throw Error(ExitCode::temp_fail, plan_.name + " is already running" +
                                                 (st && st->pid > 0 ? " (supervisor pid " + std::to_string(st->pid) + ")" : ""));
        }
        started_ms_ = wall_ms();
        std::optional<Status> previous;
        try {
            previous = read_status(paths_.status);
        } catch (const Error&) {
        }
        flush_status();  // at once, so `stop` never reads the previous owner's pid
        logfile_ = std::make_unique<LogFile>(paths_.log, plan_.log_size, plan_.log_keep, detached_);
        if (previous) kill_orphan(*previous);
        ::signal(SIGPIPE, SIG_IGN);
        sigfd_ = std::make_unique<SignalFd>(std::initializer_list<int>{SIGINT, SIGTERM, SIGHUP, SIGCHLD});
        // Orphans of the child (its daemonised grandchildren) come to us and are reaped, never zombies.
        ::prctl(PR_SET_CHILD_SUBREAPER, 1);
        load_policies();
        log_.info("supervising ", plan_.name, ": ", shell_join(plan_.command), " (policies: ", engine_->active(),
                  ", log ", paths_.log.string(), ")");

        auto now = Clock::now();
        first_spawn_ = true;
        apply(core_.start(now));
        first_spawn_ = false;
        ready.ok(::getpid());

        while (!core_.finished()) step();
        pid_ = 0;
        flush_status();
        log_.info("supervisor of ", plan_.name, " ends (exit ", core_.final_code(), ")");
        return core_.final_code();
    }

private:
    // A supervisor that was SIGKILLed leaves its child running in its own group. Starting a second copy
    // next to it is the duplicate-instance bug of the seeds, so it goes first, if it is provably that
    // child: same process group leader and the same argv (pids get reused).
    void kill_orphan(const Status& previous) {
        if (previous.child_pid <= 0 || ::getpgid(static_cast<pid_t>(previous.child_pid)) != previous.child_pid) return;
        if (read_cmdline(static_cast<pid_t>(previous.child_pid)) != previous.command) return;
        log_.warn("killing process group ", previous.child_pid, " left behind by a supervisor that died");
        ::kill(-static_cast<pid_t>(previous.child_pid), SIGKILL);
    }

    void load_policies() {
        policy::EngineSettings es;
        es.instructions = plan_.instructions;
        es.options = plan_.sets;
        es.name = plan_.name;
        const log::Logger& lg = log_;
        auto e = std::make_unique<policy::Engine>(es, [&lg](log::Level l, const std::string& m) { lg.log(l, "policy: ", m); });
        for (const auto& f : plan_.policies) e->load_file(f);
        e->schedule_ticks(Clock::now());
        engine_ = std::move(e);
    }

    policy::ChildInfo child_info(Clock::time_point now) const {
        policy::ChildInfo c;
        c.name = plan_.name;
        c.pid = pid_;
        c.restarts = core_.restarts();
        c.running = pid_ > 0;
        c.uptime = pid_ > 0 ? std::chrono::duration<double>(now - child_started_).count() : 0.0;
        c.state = supervise::state_name(core_.state());
        return c;
    }

    // Marks the status file stale; step() rewrites it once per wakeup, after all the work of that wakeup,
    // so a restart costs one file write and the new child is spawned before it.
    void write_status() { status_dirty_ = true; }

    void flush_status() {
        status_dirty_ = false;
        Status s;
        s.name = plan_.name;
        s.pid = core_.finished() ? 0 : ::getpid();
        s.child_pid = pid_;
        s.restarts = core_.restarts();
        s.state = core_.finished() ? "stopped" : supervise::state_name(core_.state());
        if (auto e = core_.snapshot().last_exit) {
            s.last_exit = e->str();
            s.last_exit_code = e->shell_code();
        }
        s.started_ms = started_ms_;
        s.child_started_ms = pid_ > 0 ? child_started_ms_ : 0;
        s.grace_ms = plan_.settings.grace.count();
        s.command = plan_.command;
        try {
            ::tn::watch::write_status(paths_, s);
        } catch (const Error& e) {
            log_.warn(e.what(), ", ignoring");  // status is advisory; supervision goes on
        }
    }

    int poll_timeout(Clock::time_point now) const {
        std::optional<Clock::time_point> at = core_.next_deadline();
        if (auto t = engine_->next_tick(); t && (!at || *t < *at)) at = t;
        if (!at) return -1;  // idle: sleep until a signal or output
        if (*at <= now) return 0;
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(*at - now).count();
        return static_cast<int>(std::min<long long>((us + 999) / 1000, 24LL * 3600 * 1000));  // round up: no early spin
    }

    void step() {
        if (status_dirty_) flush_status();
        if (detached_) logfile_->check_size();
        pollfd fds[3] = {{sigfd_->fd(), POLLIN, 0}, {out_.get(), POLLIN, 0}, {err_.get(), POLLIN, 0}};
        int rc = ::poll(fds, 3, poll_timeout(Clock::now()));  // negative fds are ignored by poll
        if (rc < 0 && errno != EINTR) throw Error(ExitCode::io, std::string("poll: ") + std::strerror(errno));
        if (rc > 0 && fds[0].revents != 0) handle_signals();
        if (rc > 0 && fds[1].revents != 0 && out_) read_stream(out_, out_lines_, "stdout", false);
        if (rc > 0 && fds[2].revents != 0 && err_) read_stream(err_, err_lines_, "stderr", false);
        // Both pipes at EOF almost always means the child is exiting and often already a zombie: reaping
        // now saves the wakeup for SIGCHLD on the restart path. WNOHANG, so a child that merely closed
        // its output costs one waitpid per event, never a loop.
        if (rc > 0 && pid_ > 0 && !out_ && !err_ && (fds[1].revents != 0 || fds[2].revents != 0)) reap();
        auto now = Clock::now();
        apply(core_.timer(now));
        if (!core_.finished()) {
            engine_->on_tick(child_info(now), now);
            drain_policy_actions();
        }
    }

    void handle_signals() {
        while (auto sig = sigfd_->take()) {
            auto now = Clock::now();
            if (*sig == SIGCHLD) {
                reap();
            } else if (*sig == SIGHUP) {
                log_.info("SIGHUP: reloading ", plan_.policies.size(), " policy file(s)");
                try {
                    load_policies();
                } catch (const Error& e) {
                    log_.error(e.what(), "; keeping the policies loaded before");
                }
            } else {
                log_.info("stopping on SIG", sigabbrev_np(*sig));
                apply(core_.shutdown(now));
                write_status();
            }
        }
    }

    void reap() {
        for (;;) {
            int st = 0;
            pid_t r = ::waitpid(-1, &st, WNOHANG);
            if (r <= 0) return;
            if (r == pid_) child_exited(supervise::ExitStatus::from_wait_status(st));
        }
    }

    void read_stream(UniqueFd& fd, LineSplitter& lines, const char* stream, bool to_eof) {
        char buf[read_chunk];
        do {
            ssize_t n = ::read(fd.get(), buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return;
            auto emit = [&](std::string_view line) { on_line(stream, line); };
            if (n <= 0) {
                lines.flush(emit);
                fd.reset();
                return;
            }
            lines.feed(std::string_view(buf, static_cast<std::size_t>(n)), emit);
        } while (to_eof && fd);
    }

    void on_line(const char* stream, std::string_view line) {
        std::string stamped = log::iso8601_utc(std::chrono::system_clock::now());
        stamped.append(" ").append(stream).append(": ").append(line);
        logfile_->write_line(stamped);
        if (!detached_) {
            std::string raw(line);
            raw += '\n';
            (void)::write(stream[3] == 'o' ? 1 : 2, raw.data(), raw.size());
        }
        if (engine_->wants_lines()) {
            engine_->on_line(child_info(Clock::now()), stream, line);
            drain_policy_actions();
        }
    }

    void child_exited(supervise::ExitStatus status) {
        auto now = Clock::now();
        int pgid = pid_;
        // What the child wrote just before it died is still in the pipes.
        if (out_) read_stream(out_, out_lines_, "stdout", true);
        if (err_) read_stream(err_, err_lines_, "stderr", true);
        out_.reset();
        err_.reset();
        // Whatever is left of its process group would hold ports and files the next child needs.
        if (::kill(-pgid, SIGKILL) == 0) log_.info("killed what was left of process group ", pgid);
        pid_ = 0;
        double ran = std::chrono::duration<double>(now - child_started_).count();
        log_.info("child ", pgid, " ended: ", status.str(), " after ", fmt_seconds(ran), "s");
        apply(core_.exited(status, now));
        if (core_.state() == supervise::State::deciding) decide(status, now);
        write_status();
    }

    static std::string fmt_seconds(double s) {
        char b[32];
        std::snprintf(b, sizeof b, "%.3f", s);
        return b;
    }

    void decide(const supervise::ExitStatus& status, Clock::time_point now) {
        auto seed = core_.default_decision(now);
        policy::ExitInfo info{status.code, status.signal, status.signaled, status.str(),
                              std::chrono::duration<double>(now - child_started_).count(), core_.restart_requested()};
        auto d = engine_->on_exit(child_info(now), info,
                                  policy::Decision{seed.restart, static_cast<double>(seed.delay.count()) / 1000.0});
        supervise::Decision sd{d.restart, supervise::Duration(static_cast<long long>(std::llround(d.delay * 1000))), {}};
        if (status.spawn_failed && sd.delay < min_spawn_retry) sd.delay = min_spawn_retry;
        if (!sd.restart && !seed.restart) log_.warn(seed.why, "; supervisor of ", plan_.name, " ends");
        else if (!sd.restart) log_.warn("policy says no restart: giving up on ", plan_.name);
        apply(core_.decide(sd, now));
        // The delay the core applies, which the minimum gap between two children may have raised.
        if (auto at = core_.next_deadline(); at && core_.state() == supervise::State::waiting)
            log_.info("restarting in ", fmt_seconds(std::chrono::duration<double>(*at - now).count()), "s");
        else if (sd.restart && core_.state() == supervise::State::running)
            log_.info("restarting in 0.000s");
        drain_policy_actions();
    }

    void spawn() {
        auto now = Clock::now();
        try {
            Spawned s = spawn_child(plan_.command);
            pid_ = s.pid;
            out_ = std::move(s.out);
            err_ = std::move(s.err);
            out_lines_ = {};
            err_lines_ = {};
            child_started_ = now;
            child_started_ms_ = wall_ms();
            core_.spawned(s.pid, now);
            log_.info("started child ", s.pid, " (restarts ", core_.restarts(), ")");
        } catch (const Error& e) {
            // The very first start failing is a mistake in the command line: say so instead of retrying.
            if (first_spawn_) throw;
            log_.error(e.what());
            child_started_ = now;
            apply(core_.spawn_failed(now));
            if (core_.state() == supervise::State::deciding) decide(*core_.snapshot().last_exit, now);
            return;
        }
        write_status();
        engine_->on_start(child_info(now));
        drain_policy_actions();
    }

    void apply(const supervise::Actions& actions) {
        for (const auto& a : actions) {
            switch (a.kind) {
                case supervise::Action::Kind::spawn: spawn(); break;
                case supervise::Action::Kind::signal_group:
                    if (pid_ > 0) {
                        log_.debug("SIG", sigabbrev_np(a.signal), " to process group ", pid_);
                        ::kill(-pid_, a.signal);
                    }
                    break;
                case supervise::Action::Kind::finish: break;
            }
        }
    }

    void drain_policy_actions() {
        // Actions may trigger hooks that queue more actions; the bound stops a policy ping-pong.
        for (int round = 0; round < 16; ++round) {
            auto actions = engine_->take_actions();
            if (actions.empty()) return;
            auto now = Clock::now();
            for (const auto& a : actions) {
                using K = policy::Action::Kind;
                switch (a.kind) {
                    case K::kill:
                        if (pid_ > 0) ::kill(-pid_, a.signal);
                        break;
                    case K::restart:
                        log_.info("policy asks for a restart");
                        apply(core_.restart(now));
                        break;
                    case K::stop:
                        if (core_.state() != supervise::State::held && core_.state() != supervise::State::done)
                            log_.info("policy stops the child until it says start");
                        apply(core_.hold(now));
                        break;
                    case K::start:
                        if (core_.state() == supervise::State::held) log_.info("policy starts the child again");
                        apply(core_.release(now));
                        break;
                }
            }
            write_status();
        }
    }

    const RunPlan& plan_;
    bool detached_;
    const log::Logger& log_;
    Paths paths_;
    supervise::Supervisor core_;
    std::optional<InstanceLock> lock_;
    std::unique_ptr<LogFile> logfile_;
    std::unique_ptr<SignalFd> sigfd_;
    std::unique_ptr<policy::Engine> engine_;
    int pid_ = 0;
    UniqueFd out_, err_;
    LineSplitter out_lines_, err_lines_;
    Clock::time_point child_started_{};
    long long child_started_ms_ = 0, started_ms_ = 0;
    bool first_spawn_ = false;
    bool status_dirty_ = false;
};

}  // namespace

int supervise(const RunPlan& plan, bool detached, Ready& ready, const log::Logger& log) {
    Runner r(plan, detached, log);
    return r.run(ready);
}

}  // namespace tn::watch
