// Unit tests of tn-watch's own pieces: names, line splitting, log rotation, the status file, the lock.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/error.hpp"
#include "child.hpp"
#include "instance.hpp"
#include "log_file.hpp"
#include "options.hpp"

using namespace tn::watch;
namespace fs = std::filesystem;

namespace {
struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/tn-watch-unit-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

std::string slurp(const fs::path& p) {
    std::ifstream f(p);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

std::vector<std::string> split_all(const std::vector<std::string>& chunks) {
    LineSplitter s;
    std::vector<std::string> out;
    auto emit = [&](std::string_view l) { out.emplace_back(l); };
    for (const auto& c : chunks) s.feed(c, emit);
    s.flush(emit);
    return out;
}
}  // namespace

TEST_CASE("names are checked") {
    CHECK_NOTHROW(check_name("tunnel-1.main_x"));
    CHECK_THROWS_AS(check_name(""), tn::ParseError);
    CHECK_THROWS_WITH(check_name("a/../etc"), Catch::Contains("only letters"));
    CHECK_THROWS_WITH(check_name(".hidden"), Catch::Contains("must not start"));
    CHECK_THROWS_AS(check_name(std::string(65, 'a')), tn::ParseError);
}

TEST_CASE("lines are split across chunks, CRLF trimmed, the tail flushed") {
    CHECK(split_all({"a\nb", "c\r\n", "\nlast"}) == std::vector<std::string>{"a", "bc", "", "last"});
    CHECK(split_all({""}).empty());
}

TEST_CASE("an endless line is cut at the cap") {
    std::string big(LineSplitter::max_line * 2 + 10, 'x');
    auto lines = split_all({big, "\n"});
    REQUIRE(lines.size() == 3);
    CHECK(lines[0].size() == LineSplitter::max_line);
    CHECK(lines[2].size() == 10);
}

TEST_CASE("the log rotates by size and keeps N files") {
    TempDir d;
    auto path = d.path / "n.log";
    LogFile log(path, 4096, 2, false);
    std::string line(99, 'y');
    for (int i = 0; i < 200; ++i) log.write_line(line + std::to_string(i % 10));
    CHECK(fs::exists(path));
    CHECK(fs::exists(d.path / "n.log.1"));
    CHECK(fs::exists(d.path / "n.log.2"));
    CHECK_FALSE(fs::exists(d.path / "n.log.3"));
    for (auto p : {path, d.path / "n.log.1", d.path / "n.log.2"}) CHECK(fs::file_size(p) <= 4096);
    CHECK(slurp(path).find(line + "9\n") != std::string::npos);
}

TEST_CASE("the status file round-trips, odd characters included") {
    TempDir d;
    Paths p(d.path, "s");
    Status s;
    s.name = "s";
    s.pid = 10;
    s.child_pid = 11;
    s.restarts = 4;
    s.state = "running";
    s.last_exit = "signal 9 (SIGKILL)";
    s.last_exit_code = 137;
    s.started_ms = 1700000000000;
    s.command = {"sh", "-c", "echo 'a\\b'\nnext"};
    write_status(p, s);
    auto r = read_status(p.status);
    REQUIRE(r);
    CHECK(r->command == s.command);
    CHECK(r->restarts == 4);
    CHECK(r->last_exit_code == 137);
    CHECK(r->to_json() == s.to_json());
    CHECK(list_names(d.path) == std::vector<std::string>{"s"});
    std::ofstream(d.path / "junk.status") << "not ours\n";
    CHECK_THROWS_AS(read_status(d.path / "junk.status"), tn::Error);
    CHECK_FALSE(read_status(d.path / "missing.status"));
}

TEST_CASE("the instance lock admits one holder, and probes never take it") {
    TempDir d;
    auto lock = d.path / "x.lock";
    CHECK_FALSE(is_running(lock));
    auto a = InstanceLock::acquire(lock);
    REQUIRE(a);
    CHECK(is_running(lock));
    CHECK_FALSE(InstanceLock::acquire(lock));
    a.reset();
    CHECK_FALSE(is_running(lock));
    CHECK(InstanceLock::acquire(lock));
}

TEST_CASE("run options are validated") {
    RunOptions o;
    CHECK_THROWS_WITH(make_plan(o), Catch::Contains("no command"));
    o.command = {"/usr/bin/sleep", "5"};
    auto p = make_plan(o);
    CHECK(p.name == "sleep");
    CHECK(p.settings.grace == std::chrono::milliseconds(1500));
    o.sets = {"novalue"};
    CHECK_THROWS_WITH(make_plan(o), Catch::Contains("KEY=VALUE"));
    o.sets = {"a=b=c"};
    CHECK(make_plan(o).sets.at("a") == "b=c");
    o.backoff_initial = 10;
    o.backoff_max = 1;
    CHECK_THROWS_WITH(make_plan(o), Catch::Contains("--backoff-max"));
    o.backoff_max = 30;
    o.log_size = 10;
    CHECK_THROWS_WITH(make_plan(o), Catch::Contains("--log-size"));
}

TEST_CASE("spawning a missing command says which") {
    CHECK_THROWS_WITH(spawn_child({"/nonexistent/tn-watch-test"}), Catch::Contains("/nonexistent/tn-watch-test"));
}

TEST_CASE("policy names are searched in TN_LUA_PATH, the installed dir, then the source tree above the binary") {
    namespace fs = std::filesystem;
    fs::path src(TN_SOURCE_ROOT);
    auto dirs = policy_dirs(std::string("/a::/b"), src / "builddir" / "tools" / "tn-watch" / "tn-watch");
    REQUIRE(dirs.size() == 4);
    CHECK(dirs[0] == "/a");
    CHECK(dirs[1] == "/b");
    CHECK(dirs[3] == src / "lua");
    // An installed binary: only the installed directory.
    CHECK(policy_dirs(std::nullopt, "/usr/local/bin/tn-watch").size() == 1);
}

TEST_CASE("a source tree's lua/ that others can write to is not searched") {
    namespace fs = std::filesystem;
    auto root = fs::temp_directory_path() / ("tn-lua-dirs-" + std::to_string(::getpid()));
    fs::create_directories(root / "lua");
    std::ofstream(root / "lua" / "meson.build") << "# policies\n";
    auto exe = root / "build" / "tools" / "tn-watch" / "tn-watch";
    fs::permissions(root / "lua", fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                      fs::perms::others_read | fs::perms::others_exec);
    CHECK(policy_dirs(std::nullopt, exe).back() == root / "lua");
    fs::permissions(root / "lua", fs::perms::all);  // like /tmp: anyone could plant a policy
    CHECK(policy_dirs(std::nullopt, exe).size() == 1);
    fs::remove_all(root);
}
