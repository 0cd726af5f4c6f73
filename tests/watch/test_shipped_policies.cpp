// Unit tests of the policies shipped in lua/: each one loaded from the source tree and driven by hand.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include "base/unique_fd.hpp"
#include "policy/engine.hpp"
#include "supervise/core.hpp"

#include <cmath>

using namespace tn::policy;

namespace {

std::string lua_file(const std::string& name) { return std::string(TN_SOURCE_ROOT) + "/lua/" + name; }

using Opts = std::map<std::string, std::string>;

struct Fixture {
    std::vector<std::string> lines;
    std::unique_ptr<Engine> engine;
    explicit Fixture(std::map<std::string, std::string> opts) {
        EngineSettings s;
        s.options = std::move(opts);
        s.name = "t";
        engine = std::make_unique<Engine>(s, [this](tn::log::Level, const std::string& m) { lines.push_back(m); });
    }
    std::string all() const {
        std::string s;
        for (const auto& l : lines) s += l + "\n";
        return s;
    }
};

ChildInfo running(int pid, double uptime = 0) {
    ChildInfo c;
    c.name = "t";
    c.pid = pid;
    c.running = true;
    c.uptime = uptime;
    c.state = "running";
    return c;
}

ExitInfo short_run(double runtime) { return ExitInfo{1, 0, false, "exit 1", runtime}; }

int closed_port() {
    tn::UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);  // bound, never listening, then closed: connect is refused
}

}  // namespace

TEST_CASE("backoff.lua grows, caps and resets") {
    Fixture f(Opts{{"backoff_initial", "0.5"}, {"backoff_max", "3"}, {"stable_after", "10"}});
    REQUIRE(f.engine->load_file(lua_file("backoff.lua")));
    std::vector<double> got;
    for (int i = 0; i < 5; ++i) got.push_back(f.engine->on_exit(running(0), short_run(1), Decision{}).delay);
    CHECK(got == std::vector<double>{0.5, 1, 2, 3, 3});
    CHECK(f.engine->on_exit(running(0), short_run(11), Decision{}).delay == 0.5);
    INFO(f.all());
    CHECK(f.lines.empty());
}

TEST_CASE("backoff.lua picks the delay but keeps a decision not to restart") {
    Fixture f(Opts{});
    REQUIRE(f.engine->load_file(lua_file("backoff.lua")));
    CHECK_FALSE(f.engine->on_exit(running(0), ExitInfo{77, 0, false, "exit 77", 0.1}, Decision{false, 0}).restart);
}

namespace {
// Drives the supervisor core and the policies the way tn-watch's runner does, with fake time: a child
// that prints `line` and exits 1 at once, `runs` times at most. Returns how many children were started.
int drive(Engine& e, const std::string& line, int runs) {
    using tn::supervise::Supervisor;
    tn::supervise::Settings st;
    st.backoff.initial = std::chrono::milliseconds(10);
    Supervisor s(st);
    auto now = Clock::time_point{} + std::chrono::hours(1);
    auto act = [&](const tn::supervise::Actions& as) {
        for (const auto& a : as) (void)a;
    };
    int started = 0;
    s.start(now);
    while (!s.finished() && started < runs) {
        if (s.state() == tn::supervise::State::waiting) {
            now = *s.next_deadline();
            act(s.timer(now));
            continue;
        }
        ++started;
        s.spawned(100 + started, now);
        ChildInfo c = running(100 + started);
        c.restarts = s.restarts();
        e.on_start(c);
        e.on_line(c, "stderr", line);
        for (const auto& a : e.take_actions())
            if (a.kind == Action::Kind::restart) act(s.restart(now));
        now += std::chrono::milliseconds(1);
        s.exited(tn::supervise::ExitStatus::exited(1), now);
        if (s.state() != tn::supervise::State::deciding) continue;
        auto seed = s.default_decision(now);
        auto d = e.on_exit(c, ExitInfo{1, 0, false, "exit 1", 0.001, s.restart_requested()},
                           Decision{seed.restart, static_cast<double>(seed.delay.count()) / 1000});
        act(s.decide(tn::supervise::Decision{d.restart, std::chrono::milliseconds(std::llround(d.delay * 1000)), {}},
                     now));
    }
    return started;
}
}  // namespace

TEST_CASE("output-match.lua and max-restarts.lua compose: restarts asked for by a policy are counted") {
    // tn-watch(1)'s example: --policy output-match.lua --set pattern=FATAL --policy max-restarts.lua
    // --set max_restarts=3 over a child that prints FATAL and exits.
    Fixture f(Opts{{"pattern", "FATAL"}, {"max_restarts", "3"}});
    REQUIRE(f.engine->load_file(lua_file("output-match.lua")));
    REQUIRE(f.engine->load_file(lua_file("max-restarts.lua")));
    CHECK(drive(*f.engine, "FATAL: cannot bind", 100) == 4);
    INFO(f.all());
    CHECK(f.all().find("giving up") != std::string::npos);
}

TEST_CASE("the shipped restart-on-error.lua example gives up after five restarts") {
    Fixture f(Opts{});
    REQUIRE(f.engine->load_file(std::string(TN_SOURCE_ROOT) + "/examples/tn-watch/restart-on-error.lua"));
    CHECK(drive(*f.engine, "connection lost", 100) == 5);
    INFO(f.all());
    CHECK(f.all().find("giving up") != std::string::npos);
}

TEST_CASE("max-restarts.lua gives up after too many exits") {
    Fixture f(Opts{{"max_restarts", "2"}, {"restart_window", "0"}});
    REQUIRE(f.engine->load_file(lua_file("max-restarts.lua")));
    CHECK(f.engine->on_exit(running(0), short_run(0), Decision{true, 1}).restart);
    CHECK(f.engine->on_exit(running(0), short_run(0), Decision{true, 1}).restart);
    auto d = f.engine->on_exit(running(0), short_run(0), Decision{true, 1});
    CHECK_FALSE(d.restart);
    CHECK(f.all().find("giving up") != std::string::npos);
}

TEST_CASE("output-match.lua restarts once per child on a match") {
    Fixture f(Opts{{"pattern", "fatal: %w+"}, {"match_stream", "stderr"}});
    REQUIRE(f.engine->load_file(lua_file("output-match.lua")));
    f.engine->on_line(running(10), "stdout", "fatal: ignored on stdout");
    f.engine->on_line(running(10), "stderr", "all good");
    CHECK(f.engine->take_actions().empty());
    f.engine->on_line(running(10), "stderr", "fatal: broken pipe");
    f.engine->on_line(running(10), "stderr", "fatal: again");
    CHECK(f.engine->take_actions() == std::vector<Action>{{Action::Kind::restart, 0}});
    f.engine->on_line(running(11), "stderr", "fatal: new child");
    CHECK(f.engine->take_actions() == std::vector<Action>{{Action::Kind::restart, 0}});
}

TEST_CASE("output-match.lua refuses to run without a pattern") {
    Fixture f(Opts{});
    CHECK_FALSE(f.engine->load_file(lua_file("output-match.lua")));
    CHECK(f.all().find("output-match.lua:") != std::string::npos);
}

TEST_CASE("schedule.lua restarts a child that ran for the interval") {
    Fixture f(Opts{{"every", "2"}});
    REQUIRE(f.engine->load_file(lua_file("schedule.lua")));
    auto t = Clock::time_point{} + std::chrono::hours(1);
    f.engine->schedule_ticks(t);
    REQUIRE(f.engine->next_tick() == t + std::chrono::milliseconds(500));
    f.engine->on_tick(running(5, 1.0), t + std::chrono::milliseconds(500));
    CHECK(f.engine->take_actions().empty());
    f.engine->on_tick(running(5, 2.1), t + std::chrono::milliseconds(1000));
    CHECK(f.engine->take_actions() == std::vector<Action>{{Action::Kind::restart, 0}});
}

TEST_CASE("network.lua holds the child while the probe fails") {
    int port = closed_port();
    Fixture f(Opts{{"probe", "127.0.0.1:" + std::to_string(port)}, {"probe_interval", "1"}});
    REQUIRE(f.engine->load_file(lua_file("network.lua")));
    f.engine->on_start(running(3));
    CHECK(f.engine->take_actions() == std::vector<Action>{{Action::Kind::stop, 0}});
    f.engine->on_tick(running(0), Clock::now() + std::chrono::hours(1));
    CHECK(f.engine->take_actions().empty());  // already held: no second stop

    // The target comes up: the next probe starts the child.
    tn::UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
    int one = 1;
    ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    REQUIRE(::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(s.get(), 4) == 0);
    f.engine->schedule_ticks(Clock::now() - std::chrono::hours(2));
    f.engine->on_tick(running(0), Clock::now());
    CHECK(f.engine->take_actions() == std::vector<Action>{{Action::Kind::start, 0}});
    INFO(f.all());
    CHECK(f.all().find("reachable again") != std::string::npos);
}

TEST_CASE("network.lua without a probe target is a clear load error") {
    Fixture f(Opts{});
    CHECK_FALSE(f.engine->load_file(lua_file("network.lua")));
    CHECK(f.all().find("needs --set probe=HOST:PORT") != std::string::npos);
}
