// Unit tests of lib/supervise: backoff growth, cap and reset, and the child state machine with fake time.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>

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
    CHECK(ExitStatus::from_wait_status(3 << 8).str() == "exit 3");
    CHECK(ExitStatus::from_wait_status(SIGKILL).str() == "signal 9 (SIGKILL)");
    CHECK(ExitStatus::from_wait_status(SIGKILL).shell_code() == 137);
    CHECK(ExitStatus::exited(0).success());
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

TEST_CASE("a second shutdown request kills at once") {
    Supervisor s(quick());
    auto now = t0();
    s.start(now);
    s.spawned(1, now);
    s.shutdown(now);
    CHECK(s.shutdown(now) == Actions{Action::kill(SIGKILL)});
    CHECK(s.shutdown(now).empty());
}

TEST_CASE("shutdown while waiting finishes without a kill") {
    Supervisor s(quick());
    auto now = t0();
    s.start(now);
    s.spawned(1, now);
    s.exited(ExitStatus::exited(1), now);
    s.decide(s.default_decision(now), now);
    CHECK(s.shutdown(now) == Actions{Action::finish()});
    CHECK(!s.next_deadline());
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

TEST_CASE("restart and start requests do not skip a pending backoff") {
    Supervisor s(quick());
    auto now = t0();
    s.start(now);
    s.spawned(1, now);
    s.exited(ExitStatus::exited(1), now);
    CHECK(s.restart(now).empty());  // deciding: the decision comes first
    s.decide(s.default_decision(now), now);
    REQUIRE(s.state() == State::waiting);
    CHECK(s.restart(now).empty());
    CHECK(s.release(now).empty());
    CHECK(s.state() == State::waiting);
    CHECK(s.next_deadline() == now + milliseconds(100));
}

TEST_CASE("the default restarts on failure only, and never after 77 or 78") {
    auto decided = [](ExitStatus st) {
        Supervisor s(quick());
        auto now = t0();
        s.start(now);
        s.spawned(1, now);
        s.exited(st, now);
        return s.default_decision(now);
    };
    CHECK(decided(ExitStatus::exited(1)).restart);
    CHECK(decided(ExitStatus::exited(75)).restart);
    CHECK(decided(ExitStatus::killed(SIGKILL)).restart);
    CHECK(decided(ExitStatus::killed(SIGTERM)).restart);
    auto clean = decided(ExitStatus::exited(0));
    CHECK(!clean.restart);
    CHECK_THAT(clean.why, Catch::Contains("exited 0"));
    auto auth = decided(ExitStatus::exited(77));
    CHECK(!auth.restart);
    CHECK_THAT(auth.why, Catch::Contains("77") && Catch::Contains("refused"));
    auto config = decided(ExitStatus::exited(78));
    CHECK(!config.restart);
    CHECK_THAT(config.why, Catch::Contains("78") && Catch::Contains("configuration"));
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

TEST_CASE("late reports do not confuse a finished supervisor") {
    Supervisor s(quick());
    auto now = t0();
    s.start(now);
    s.spawned(1, now);
    s.shutdown(now);
    s.exited(ExitStatus::killed(SIGTERM), now);
    CHECK(s.finished());
    CHECK(s.exited(ExitStatus::exited(0), now).empty());
    CHECK(s.restart(now).empty());
    CHECK(s.release(now).empty());
    CHECK(s.finished());
}
