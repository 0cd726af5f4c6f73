// Unit tests of the policies shipped in lua/: each one loaded from the source tree and driven by hand.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include "base/unique_fd.hpp"
#include "policy/engine.hpp"

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
