// Unit tests of lib/supervise: backoff growth, cap and reset, and the child state machine with fake time.
// Cases of one shape are tables (exit statuses, default decisions, requests per state); the stories
// that walk the machine step by step stay written out.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <functional>
#include <string>
#include <vector>

#include "supervise/core.hpp"

using namespace tn::supervise;
using std::chrono::milliseconds;

namespace {
Clock::time_point t0() { return Clock::time_point{} + std::chrono::hours(1); }
Settings quick() {
    Settings s;
    s.backoff = BackoffSettings{milliseconds(100), milliseconds(1000), 2.0, milliseconds(5000)};
    s.grace = milliseconds(300);
    return s;
}

// A supervisor whose first child (pid 1) runs since t0().
struct Running {
    Supervisor s{quick()};
    Clock::time_point now = t0();
    Running() {
        s.start(now);
        s.spawned(1, now);
    }
    // The child exited with `st` and the default decision was taken: a restart is pending.
    Running& crashed(ExitStatus st = ExitStatus::exited(1)) {
        s.exited(st, now);
        s.decide(s.default_decision(now), now);
        return *this;
    }
};
}  // namespace

TEST_CASE("backoff doubles up to the cap") {
    Backoff b(BackoffSettings{milliseconds(100), milliseconds(1000), 2.0, milliseconds(5000)});
    CHECK(b.next(milliseconds(10)) == milliseconds(100));
    CHECK(b.next(milliseconds(10)) == milliseconds(200));
    CHECK(b.next(milliseconds(10)) == milliseconds(400));
    CHECK(b.next(milliseconds(10)) == milliseconds(800));
    CHECK(b.next(milliseconds(10)) == milliseconds(1000));
    for (int i = 0; i < 100; ++i) CHECK(b.next(milliseconds(10)) == milliseconds(1000));
}

TEST_CASE("backoff resets after a stable run") {
    Backoff b(BackoffSettings{milliseconds(100), milliseconds(1000), 2.0, milliseconds(5000)});
    b.next(milliseconds(1));
    b.next(milliseconds(1));
    CHECK(b.peek(milliseconds(1)) == milliseconds(400));
    CHECK(b.peek(milliseconds(5000)) == milliseconds(100));
    CHECK(b.next(milliseconds(6000)) == milliseconds(100));
    CHECK(b.next(milliseconds(1)) == milliseconds(200));
}

TEST_CASE("backoff with a zero initial delay restarts at once") {
    Backoff b(BackoffSettings{milliseconds(0), milliseconds(0), 2.0, milliseconds(1000)});
    for (int i = 0; i < 5; ++i) CHECK(b.next(milliseconds(0)) == milliseconds(0));
}

TEST_CASE("backoff rejects bad settings") {
    CHECK_THROWS_WITH(Backoff(BackoffSettings{milliseconds(-1), milliseconds(10), 2.0, milliseconds(1)}),
                      Catch::Contains("negative"));
    CHECK_THROWS_WITH(Backoff(BackoffSettings{milliseconds(1), milliseconds(10), 0.5, milliseconds(1)}),
                      Catch::Contains("factor"));
}

TEST_CASE("exit status from waitpid") {
    struct Row {
        int wait_status;
        const char* str;
        int shell_code;
        bool success;
    };
    auto row = GENERATE(values<Row>({
        {0, "exit 0", 0, true},
        {3 << 8, "exit 3", 3, false},
        {SIGKILL, "signal 9 (SIGKILL)", 137, false},
        {SIGTERM, "signal 15 (SIGTERM)", 143, false},
    }));
    INFO("wait status " << row.wait_status);
    auto st = ExitStatus::from_wait_status(row.wait_status);
    CHECK(st.str() == row.str);
    CHECK(st.shell_code() == row.shell_code);
    CHECK(st.success() == row.success);
}

TEST_CASE("a crashing child is restarted with growing delays") {
    Supervisor s(quick());
    auto now = t0();
    CHECK(s.start(now) == Actions{Action::spawn()});
    s.spawned(100, now);
    CHECK(s.state() == State::running);

    now += milliseconds(10);
    CHECK(s.exited(ExitStatus::exited(1), now).empty());
    REQUIRE(s.state() == State::deciding);
    Decision d = s.default_decision(now);
    CHECK(d.restart);
    CHECK(d.delay == milliseconds(100));
    CHECK(s.decide(d, now).empty());
    CHECK(s.state() == State::waiting);
    CHECK(s.next_deadline() == now + milliseconds(100));

    CHECK(s.timer(now + milliseconds(99)).empty());
    now += milliseconds(100);
    CHECK(s.timer(now) == Actions{Action::spawn()});
    s.spawned(101, now);
    CHECK(s.restarts() == 1);

    now += milliseconds(10);
    s.exited(ExitStatus::killed(SIGSEGV), now);
    CHECK(s.default_decision(now).delay == milliseconds(200));
    s.decide(s.default_decision(now), now);
    now += milliseconds(200);
    CHECK(s.timer(now) == Actions{Action::spawn()});
    s.spawned(102, now);
    CHECK(s.snapshot().restarts == 2);
    CHECK(s.snapshot().last_exit->signal == SIGSEGV);

    // A long, stable run forgives the streak.
    now += milliseconds(6000);
    s.exited(ExitStatus::exited(1), now);
    CHECK(s.default_decision(now).delay == milliseconds(100));
}

TEST_CASE("a zero delay decision still waits the minimum gap after the exit") {
    Supervisor s(quick());
    auto now = t0();
    s.start(now);
    s.spawned(1, now);
    s.exited(ExitStatus::exited(1), now);
    CHECK(s.decide(Decision{true, milliseconds(0), {}}, now).empty());
    CHECK(s.state() == State::waiting);
    CHECK(s.next_deadline() == now + milliseconds(100));
    CHECK(s.timer(now + milliseconds(100)) == Actions{Action::spawn()});
    // Decided late (the exit was reaped long ago): nothing left to wait for.
    s.spawned(2, now + milliseconds(100));
    s.exited(ExitStatus::exited(1), now + milliseconds(200));
    CHECK(s.decide(Decision{true, milliseconds(0), {}}, now + milliseconds(400)) == Actions{Action::spawn()});
}

TEST_CASE("a policy that gives up finishes with the child's code") {
    Supervisor s(quick());
    auto now = t0();
    s.start(now);
    s.spawned(1, now);
    s.exited(ExitStatus::exited(7), now);
    CHECK(s.decide(Decision{false, milliseconds(0), {}}, now) == Actions{Action::finish()});
    CHECK(s.finished());
    CHECK(s.final_code() == 7);
}

TEST_CASE("shutdown sends SIGTERM, then SIGKILL after the grace period") {
    Supervisor s(quick());
    auto now = t0();
    s.start(now);
    s.spawned(1, now);
    CHECK(s.shutdown(now) == Actions{Action::kill(SIGTERM)});
    CHECK(s.state() == State::stopping);
    CHECK(s.next_deadline() == now + milliseconds(300));
    CHECK(s.timer(now + milliseconds(299)).empty());
    CHECK(s.timer(now + milliseconds(300)) == Actions{Action::kill(SIGKILL)});
    CHECK(!s.next_deadline());  // no second SIGKILL, no busy deadline
    CHECK(s.exited(ExitStatus::killed(SIGKILL), now + milliseconds(301)) == Actions{Action::finish()});
    CHECK(s.final_code() == 0);
}

TEST_CASE("hold stops the child until release") {
    Supervisor s(quick());
    auto now = t0();
    s.start(now);
    s.spawned(1, now);
    CHECK(s.hold(now) == Actions{Action::kill(SIGTERM)});
    CHECK(s.exited(ExitStatus::killed(SIGTERM), now).empty());
    CHECK(s.state() == State::held);
    CHECK(!s.next_deadline());
    CHECK(s.timer(now + std::chrono::hours(1)).empty());
    now += std::chrono::hours(1);
    CHECK(s.release(now) == Actions{Action::spawn()});
    CHECK(s.state() == State::running);
    CHECK(s.restarts() == 1);
}

TEST_CASE("a release right after the exit waits the minimum gap") {
    Supervisor s(quick());
    auto now = t0();
    s.start(now);
    s.spawned(1, now);
    s.hold(now);
    s.exited(ExitStatus::killed(SIGTERM), now);
    CHECK(s.release(now + milliseconds(10)).empty());
    CHECK(s.state() == State::waiting);
    CHECK(s.next_deadline() == now + milliseconds(100));
}

TEST_CASE("hold during a restart delay cancels the restart") {
    Supervisor s(quick());
    auto now = t0();
    s.start(now);
    s.spawned(1, now);
    s.exited(ExitStatus::exited(1), now);
    s.decide(s.default_decision(now), now);
    s.hold(now);
    CHECK(s.state() == State::held);
    CHECK(s.timer(now + std::chrono::hours(1)).empty());
}

TEST_CASE("a requested restart stops the child, then is decided on like any exit") {
    Supervisor s(quick());
    auto now = t0();
    s.start(now);
    s.spawned(1, now);
    CHECK(s.restart(now) == Actions{Action::kill(SIGTERM)});
    CHECK(s.exited(ExitStatus::killed(SIGTERM), now).empty());
    REQUIRE(s.state() == State::deciding);
    CHECK(s.restart_requested());
    Decision d = s.default_decision(now);
    CHECK(d.restart);  // a SIGTERM we sent is no reason to give up
    CHECK(d.delay == milliseconds(100));
    CHECK(s.decide(d, now).empty());
    CHECK(s.state() == State::waiting);
    CHECK(s.timer(now + milliseconds(100)) == Actions{Action::spawn()});
    CHECK(s.restarts() == 1);
    CHECK(!s.restart_requested());
}

TEST_CASE("a policy can refuse a requested restart: its limits apply") {
    Supervisor s(quick());
    auto now = t0();
    s.start(now);
    s.spawned(1, now);
    s.restart(now);
    s.exited(ExitStatus::exited(1), now);
    CHECK(s.decide(Decision{false, milliseconds(0), {}}, now) == Actions{Action::finish()});
    CHECK(s.finished());
}

TEST_CASE("requested restarts back off like crashes: no restart storm") {
    // The child prints FATAL and exits at once, a policy asks for a restart on every FATAL.
    Supervisor s(quick());
    auto now = t0();
    s.start(now);
    std::vector<milliseconds> delays;
    for (int i = 0; i < 6; ++i) {
        s.spawned(10 + i, now);
        s.restart(now);
        s.exited(ExitStatus::exited(1), now + milliseconds(1));
        REQUIRE(s.state() == State::deciding);
        s.decide(s.default_decision(now), now + milliseconds(1));
        REQUIRE(s.next_deadline());
        delays.push_back(std::chrono::duration_cast<milliseconds>(*s.next_deadline() - now - milliseconds(1)));
        now = *s.next_deadline();
        CHECK(s.timer(now) == Actions{Action::spawn()});
    }
    CHECK(delays == std::vector<milliseconds>{milliseconds(100), milliseconds(200), milliseconds(400),
                                              milliseconds(800), milliseconds(1000), milliseconds(1000)});
}

TEST_CASE("the default restarts on failure only, and never after 77 or 78") {
    struct Row {
        ExitStatus status;
        bool restart;
        std::vector<std::string> why;  // words the reason for not restarting must hold
    };
    auto row = GENERATE(values<Row>({
        {ExitStatus::exited(1), true, {}},
        {ExitStatus::exited(75), true, {}},
        {ExitStatus::killed(SIGKILL), true, {}},
        {ExitStatus::killed(SIGTERM), true, {}},
        {ExitStatus::exited(0), false, {"exited 0"}},
        {ExitStatus::exited(77), false, {"77", "refused"}},
        {ExitStatus::exited(78), false, {"78", "configuration"}},
    }));
    INFO(row.status.str());
    Running r;
    r.s.exited(row.status, r.now);
    Decision d = r.s.default_decision(r.now);
    CHECK(d.restart == row.restart);
    for (const auto& w : row.why) CHECK_THAT(d.why, Catch::Contains(w));
}

TEST_CASE("a policy can restart after 77 all the same, at the backoff's pace") {
    Supervisor s(quick());
    auto now = t0();
    s.start(now);
    s.spawned(1, now);
    s.exited(ExitStatus::exited(77), now);
    CHECK(s.decide(Decision{true, milliseconds(0), {}}, now).empty());
    CHECK(s.state() == State::waiting);
}

TEST_CASE("a spawn failure goes through the decision like an exit 127") {
    Supervisor s(quick());
    auto now = t0();
    s.start(now);
    CHECK(s.spawn_failed(now).empty());
    CHECK(s.state() == State::deciding);
    CHECK(s.snapshot().last_exit->spawn_failed);
    CHECK(s.snapshot().last_exit->str() == "spawn failed");
}

TEST_CASE("what a request does in each state") {
    using Setup = std::function<void(Running&)>;
    using Request = Actions (Supervisor::*)(Clock::time_point);
    struct Row {
        const char* what;
        Setup setup;
        Request request;
        Actions actions;
        State after;
    };
    const Setup running = [](Running&) {};
    const Setup stopping = [](Running& r) { r.s.shutdown(r.now); };
    const Setup deciding = [](Running& r) { r.s.exited(ExitStatus::exited(1), r.now); };
    const Setup waiting = [](Running& r) { r.crashed(); };
    const Setup held = [](Running& r) {
        r.s.hold(r.now);
        r.s.exited(ExitStatus::killed(SIGTERM), r.now);
        r.now += std::chrono::hours(1);  // released long after: no gap left to wait
    };
    const Setup done = [](Running& r) {
        r.s.shutdown(r.now);
        r.s.exited(ExitStatus::killed(SIGTERM), r.now);
    };
    auto row = GENERATE_COPY(values<Row>({
        {"shutdown, running", running, &Supervisor::shutdown, {Action::kill(SIGTERM)}, State::stopping},
        {"shutdown, stopping: kill at once", stopping, &Supervisor::shutdown, {Action::kill(SIGKILL)}, State::stopping},
        {"shutdown, waiting: nothing to kill", waiting, &Supervisor::shutdown, {Action::finish()}, State::done},
        {"shutdown, done", done, &Supervisor::shutdown, {}, State::done},
        {"hold, running", running, &Supervisor::hold, {Action::kill(SIGTERM)}, State::stopping},
        {"hold, waiting: the restart is cancelled", waiting, &Supervisor::hold, {}, State::held},
        {"restart, running", running, &Supervisor::restart, {Action::kill(SIGTERM)}, State::stopping},
        {"restart, deciding: the decision comes first", deciding, &Supervisor::restart, {}, State::deciding},
        {"restart, waiting: the backoff is not skipped", waiting, &Supervisor::restart, {}, State::waiting},
        {"restart, done", done, &Supervisor::restart, {}, State::done},
        {"release, waiting: the backoff is not skipped", waiting, &Supervisor::release, {}, State::waiting},
        {"release, held", held, &Supervisor::release, {Action::spawn()}, State::running},
        {"release, done", done, &Supervisor::release, {}, State::done},
    }));
    INFO(row.what);
    Running r;
    row.setup(r);
    CHECK((r.s.*row.request)(r.now) == row.actions);
    CHECK(state_name(r.s.state()) == std::string(state_name(row.after)));
}

TEST_CASE("a pending backoff keeps its deadline through requests that cannot skip it") {
    Running r;
    r.crashed();
    r.s.restart(r.now);
    r.s.release(r.now);
    CHECK(r.s.next_deadline() == r.now + milliseconds(100));
}

TEST_CASE("a finished supervisor ignores a late exit report") {
    Running r;
    r.s.shutdown(r.now);
    r.s.exited(ExitStatus::killed(SIGTERM), r.now);
    REQUIRE(r.s.finished());
    CHECK(r.s.exited(ExitStatus::exited(0), r.now).empty());
    CHECK(r.s.finished());
}
