// Unit tests of lib/policy: sandbox, limits, error reports with file:line, composition, the tn API.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "base/error.hpp"
#include "base/unique_fd.hpp"
#include "policy/engine.hpp"
#include "policy/tn_api.hpp"

using namespace tn::policy;

namespace {

struct Logged {
    std::vector<std::pair<tn::log::Level, std::string>> lines;
    Sink sink() {
        return [this](tn::log::Level l, const std::string& m) { lines.emplace_back(l, m); };
    }
    bool has(const std::string& needle) const {
        for (const auto& l : lines)
            if (l.second.find(needle) != std::string::npos) return true;
        return false;
    }
    std::string all() const {
        std::string s;
        for (const auto& l : lines) s += l.second + "\n";
        return s;
    }
};

EngineSettings small() {
    EngineSettings s;
    s.instructions = 1'000'000;
    s.memory = 4u << 20;
    s.name = "demo";
    s.env = [](const std::string& n) -> std::optional<std::string> {
        if (n == "DEMO_VAR") return std::string("hello");
        return std::nullopt;
    };
    s.options = {{"probe", "127.0.0.1:1"}, {"max", "3"}};
    return s;
}

ChildInfo child(int pid = 42) {
    ChildInfo c;
    c.name = "demo";
    c.pid = pid;
    c.running = pid > 0;
    c.state = "running";
    return c;
}

ExitInfo exit1(double runtime = 0) { return ExitInfo{1, 0, false, "exit 1", runtime}; }

}  // namespace

TEST_CASE("a syntax error is reported with its line and the file is skipped") {
    Logged log;
    Engine e(small(), log.sink());
    CHECK_FALSE(e.load_string("bad.lua", "x = 1\nfunction on_exit(\n  return nil\n"));
    CHECK(e.active() == 0);
    INFO(log.all());
    CHECK(log.has("bad.lua:3:"));
    CHECK(log.has("default policy takes over"));
    // The default decision stands.
    Decision d = e.on_exit(child(), exit1(), Decision{true, 1.5});
    CHECK(d.restart);
    CHECK(d.delay == 1.5);
}

TEST_CASE("a runtime error in a hook switches that policy off, keeping the seed decision") {
    Logged log;
    Engine e(small(), log.sink());
    REQUIRE(e.load_string("rt.lua", "calls = 0\nfunction on_exit(c, s, d)\n  calls = calls + 1\n  return nil + 1\nend\n"));
    Decision d = e.on_exit(child(), exit1(), Decision{true, 2});
    CHECK(d.restart);
    CHECK(d.delay == 2);
    INFO(log.all());
    CHECK(log.has("rt.lua:4:"));
    CHECK(log.has("arithmetic"));
    CHECK(e.active() == 0);
    log.lines.clear();
    e.on_exit(child(), exit1(), Decision{});
    CHECK(log.lines.empty());  // switched off: not called again
}

TEST_CASE("an endless loop hits the instruction limit and names the line") {
    Logged log;
    Engine e(small(), log.sink());
    REQUIRE(e.load_string("loop.lua", "function on_start(c)\n  local n = 0\n  while true do n = n + 1 end\nend\n"));
    e.on_start(child());
    INFO(log.all());
    CHECK(log.has("instruction limit exceeded"));
    CHECK(log.has("loop.lua:3:"));
    CHECK(e.active() == 0);
}

TEST_CASE("an endless loop at the top level fails the load") {
    Logged log;
    Engine e(small(), log.sink());
    CHECK_FALSE(e.load_string("top.lua", "while true do end\n"));
    CHECK(log.has("instruction limit exceeded"));
}

TEST_CASE("the memory cap stops a runaway allocation") {
    Logged log;
    Engine e(small(), log.sink());
    CHECK_FALSE(e.load_string("mem.lua", "local s = string.rep('x', 64 * 1024 * 1024)\n"));
    INFO(log.all());
    CHECK(log.has("not enough memory"));
}

TEST_CASE("the sandbox hides os.execute, io, require, load and C modules") {
    Logged log;
    Engine e(small(), log.sink());
    REQUIRE(e.load_string("sb.lua", R"(
        assert(os.execute == nil, "os.execute")
        assert(os.exit == nil and os.remove == nil and os.getenv == nil, "os")
        assert(io == nil, "io")
        assert(require == nil and package == nil, "require")
        assert(load == nil and loadfile == nil and dofile == nil, "load")
        assert(debug == nil, "debug")
        assert(string.dump == nil, "dump")
        assert(type(os.time()) == "number" and type(os.clock()) == "number")
        assert(string.format("%d", 3) == "3" and math.max(1, 2) == 2 and table.concat({"a"}) == "a")
    )"));
    CHECK(log.lines.empty());
}

TEST_CASE("policies compose in order and keep state between calls") {
    Logged log;
    Engine e(small(), log.sink());
    REQUIRE(e.load_string("first.lua", "function on_exit(c, s, d) return {delay = d.delay + 5} end"));
    REQUIRE(e.load_string("second.lua", R"(
        seen = 0
        function on_exit(c, s, d)
            seen = seen + 1
            if seen >= 2 then return {restart = false} end
            return {delay = d.delay * 2}
        end)"));
    Decision d = e.on_exit(child(), exit1(), Decision{true, 1});
    CHECK(d.restart);
    CHECK(d.delay == 12);
    d = e.on_exit(child(), exit1(), Decision{true, 1});
    CHECK_FALSE(d.restart);
    CHECK(d.delay == 6);
}

TEST_CASE("a malformed on_exit answer is an error, not a crash") {
    Logged log;
    Engine e(small(), log.sink());
    REQUIRE(e.load_string("ans.lua", "function on_exit() return {delay = -1} end"));
    Decision d = e.on_exit(child(), exit1(), Decision{true, 3});
    CHECK(d.delay == 3);
    CHECK(log.has("delay"));
    CHECK(e.active() == 0);
}

TEST_CASE("child methods queue actions and child fields are visible") {
    Logged log;
    Engine e(small(), log.sink());
    REQUIRE(e.load_string("act.lua", R"(
        function on_line(c, stream, line)
            assert(c.pid == 42 and c.running and c.name == "demo", "fields")
            if line:find("PANIC") then c:kill("SIGUSR1") c:restart() end
            if line == "halt" then c:stop() end
            if line == "go" then c:start() c:kill(9) end
        end)"));
    CHECK(e.wants_lines());
    e.on_line(child(), "stdout", "all fine");
    CHECK(e.take_actions().empty());
    e.on_line(child(), "stderr", "a PANIC here");
    CHECK(e.take_actions() == std::vector<Action>{{Action::Kind::kill, SIGUSR1}, {Action::Kind::restart, 0}});
    e.on_line(child(), "stdout", "halt");
    e.on_line(child(), "stdout", "go");
    CHECK(e.take_actions() == std::vector<Action>{{Action::Kind::stop, 0}, {Action::Kind::start, 0},
                                                  {Action::Kind::kill, SIGKILL}});
    CHECK(log.lines.empty());
}

TEST_CASE("tn.log, print, tn.env, tn.opt, tn.now, tn.name") {
    Logged log;
    Engine e(small(), log.sink());
    REQUIRE(e.load_string("api.lua", R"(
        tn.log("warn", "hello " .. tn.env("DEMO_VAR"))
        assert(tn.env("NOPE") == nil)
        assert(tn.opt("max", 10) == 3 and tn.opt("missing", 10) == 10 and tn.opt("probe", "") == "127.0.0.1:1")
        assert(tn.now() > 1.6e9 and tn.monotonic() >= 0)
        print("name", tn.name)
    )"));
    INFO(log.all());
    REQUIRE(log.lines.size() == 2);
    CHECK(log.lines[0].first == tn::log::Level::warn);
    CHECK(log.lines[0].second == "hello hello");
    CHECK(log.lines[1].second == "name\tdemo");
    CHECK_FALSE(e.load_string("lv.lua", "tn.log('loud', 'x')"));
    CHECK(log.has("lv.lua:1: tn.log: unknown level"));
}

TEST_CASE("tn.probe_tcp sees a listening socket and a closed port") {
    tn::UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(s);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(s.get(), 4) == 0);
    socklen_t len = sizeof a;
    ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len);
    int port = ntohs(a.sin_port);
    CHECK(probe_tcp("127.0.0.1", port, 1000).empty());
    s.reset();
    CHECK_FALSE(probe_tcp("127.0.0.1", port, 1000).empty());

    Logged log;
    Engine e(small(), log.sink());
    REQUIRE(e.load_string("probe.lua", "ok, err = tn.probe_tcp('127.0.0.1', " + std::to_string(port) +
                                           ", 500)\nassert(ok == false and type(err) == 'string')"));
    CHECK_FALSE(e.load_string("badport.lua", "tn.probe_tcp('127.0.0.1', 70000)"));
    CHECK(log.has("out of range"));
}

TEST_CASE("on_tick runs on its own interval") {
    Logged log;
    Engine e(small(), log.sink());
    REQUIRE(e.load_string("tick.lua", "tick = 2\nticks = 0\nfunction on_tick(c) ticks = ticks + 1; tn.log('info', 't' .. ticks) end"));
    REQUIRE(e.load_string("notick.lua", "function on_exit() end"));
    auto now = Clock::time_point{} + std::chrono::hours(1);
    CHECK_FALSE(e.next_tick());
    e.schedule_ticks(now);
    REQUIRE(e.next_tick());
    CHECK(*e.next_tick() == now + std::chrono::seconds(2));
    e.on_tick(child(), now + std::chrono::seconds(1));
    CHECK(log.lines.empty());
    e.on_tick(child(), now + std::chrono::seconds(2));
    CHECK(log.has("t1"));
    CHECK(*e.next_tick() == now + std::chrono::seconds(4));
}

TEST_CASE("no on_tick means no tick deadline at all") {
    Logged log;
    Engine e(small(), log.sink());
    REQUIRE(e.load_string("quiet.lua", "function on_exit() end"));
    e.schedule_ticks(Clock::now());
    CHECK_FALSE(e.next_tick());
    CHECK_FALSE(e.wants_lines());
}

TEST_CASE("load_file reports a missing file as a config error and names real files in messages") {
    Logged log;
    Engine e(small(), log.sink());
    try {
        e.load_file("/nonexistent/policy.lua");
        FAIL("no throw");
    } catch (const tn::Error& err) {
        CHECK(err.code() == tn::ExitCode::config);
        CHECK(std::string(err.what()).find("/nonexistent/policy.lua") != std::string::npos);
    }
    char tmpl[] = "/tmp/tn-policy-XXXXXX.lua";
    int fd = ::mkstemps(tmpl, 4);
    REQUIRE(fd >= 0);
    ::close(fd);
    std::ofstream(tmpl) << "-- comment\nlocal x = \n";
    CHECK_FALSE(e.load_file(tmpl));
    INFO(log.all());
    CHECK(log.has(std::string(tmpl).substr(std::string(tmpl).size() - 10)));
    CHECK(log.has(":3:"));
    std::remove(tmpl);
}

TEST_CASE("signal names parse") {
    CHECK(parse_signal("TERM") == SIGTERM);
    CHECK(parse_signal("SIGKILL") == SIGKILL);
    CHECK(parse_signal("9") == 9);
    CHECK_FALSE(parse_signal("NOPE"));
    CHECK_FALSE(parse_signal("99"));
}

TEST_CASE("on_exit sees whether a policy asked for the restart") {
    Logged log;
    Engine e(small(), log.sink());
    REQUIRE(e.load_string("req.lua", "function on_exit(c, s, d)\n  return { restart = not s.requested }\nend\n"));
    ExitInfo asked{0, 15, true, "signal 15 (SIGTERM)", 1.0, true};
    ExitInfo crashed{1, 0, false, "exit 1", 1.0, false};
    CHECK_FALSE(e.on_exit(child(), asked, Decision{true, 1}).restart);
    CHECK(e.on_exit(child(), crashed, Decision{true, 1}).restart);
    INFO(log.all());
    CHECK(log.lines.empty());
}
