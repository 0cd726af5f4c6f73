// Unit tests for lib/base/spawn, the seam over Boost.Process: real children, one per case. Each of the
// Boost 1.74 defects the seam repairs (doc/ARCHITECTURE.md, "Spawning programs") has a case here that
// fails when its repair is taken out.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/spawn.hpp"

using namespace tn;
using namespace std::string_literals;

namespace {

std::string read_all(UniqueFd& fd) {
    std::string s;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return s;
        s.append(buf, static_cast<std::size_t>(n));
    }
}

// Runs cmd with stdout (and stderr into it) captured; returns {output, shell exit code}.
std::pair<std::string, int> run(proc::Command cmd, bool null_stdin = true) {
    if (null_stdin) cmd.in = proc::Input::null;
    cmd.out = proc::Output::pipe;
    cmd.err = proc::Output::merge;
    auto c = proc::spawn(cmd);
    std::string out = read_all(c.out);
    return {out, proc::shell_code(proc::wait_status(c.pid))};
}

std::string status_field(const std::string& status, const std::string& key) {
    std::istringstream in(status);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 2);
    return "?";
}

bool no_children_left() { return ::waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD; }

}  // namespace

TEST_CASE("spawn: argv as given, output in a pipe, the exit code back") {
    auto [out, code] = run({.argv = {"sh", "-c", "echo out; echo err >&2; exit 3"}});
    CHECK(out == "out\nerr\n");
    CHECK(code == 3);
}

TEST_CASE("spawn: the child sees argv[0] as given, not the path Boost executes") {
    auto [out, code] = run({.argv = {"cat", "/proc/self/cmdline"}});
    CHECK(out == "cat\0/proc/self/cmdline\0"s);
    CHECK(code == 0);
}

TEST_CASE("spawn: the child starts with no signal blocked or ignored, whatever ours are") {
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigaddset(&term, SIGCHLD);
    REQUIRE(::sigprocmask(SIG_BLOCK, &term, &old) == 0);
    auto old_pipe = ::signal(SIGPIPE, SIG_IGN);
    auto [out, code] = run({.argv = {"cat", "/proc/self/status"}});
    ::signal(SIGPIPE, old_pipe);
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    CHECK(code == 0);
    CHECK(status_field(out, "SigBlk") == "0000000000000000");
    CHECK(status_field(out, "SigIgn") == "0000000000000000");
}

TEST_CASE("spawn: no descriptor of ours leaks into the child, close-on-exec or not") {
    int leaky = ::fcntl(::open("/dev/null", O_RDONLY), F_DUPFD, 50);  // deliberately without O_CLOEXEC
    REQUIRE(leaky >= 50);
    auto [out, code] = run({.argv = {"test", "-e", "/proc/self/fd/" + std::to_string(leaky)}});
    ::close(leaky);
    CHECK(code == 1);  // test(1): the descriptor does not exist in the child
}

TEST_CASE("spawn: pass_fds hands chosen descriptors to the child, at the number asked for") {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    UniqueFd r(fds[0]), w(fds[1]);
    auto c = proc::spawn({.argv = {"sh", "-c", "echo via-fd-3 >&3"}, .pass_fds = {{3, w.get()}}});
    w.reset();
    CHECK(read_all(r) == "via-fd-3\n");
    CHECK(proc::shell_code(proc::wait_status(c.pid)) == 0);
}

TEST_CASE("spawn: a stdin we do not have open is /dev/null for the child") {
    struct StdinClosed {  // closes our fd 0 for the case, and puts it back however the case ends
        int saved = ::fcntl(0, F_DUPFD_CLOEXEC, 10);
        StdinClosed() { ::close(0); }
        ~StdinClosed() {
            ::dup2(saved, 0);
            ::close(saved);
        }
    };
    StdinClosed closed;
    REQUIRE(closed.saved >= 10);
    auto [out, code] = run({.argv = {"sh", "-c", "read x; echo $?; test -r /proc/self/fd/0 && echo open"}}, false);
    CHECK(out == "1\nopen\n");  // read(1) saw EOF on an open stdin
    CHECK(code == 0);
}

TEST_CASE("spawn: env is added to ours, cwd is honoured") {
    auto [out, code] = run({.argv = {"sh", "-c", "printf '%s|%s|' \"$TN_SPAWN_TEST\" \"$PWD\"; pwd"},
                            .env = {{"TN_SPAWN_TEST", "a b"}},
                            .cwd = "/proc"});
    CHECK(out == "a b|/proc|/proc\n");
    CHECK(code == 0);
    auto [path, c2] = run({.argv = {"sh", "-c", "test -n \"$PATH\""}, .env = {{"TN_SPAWN_TEST", "x"}}});
    CHECK(c2 == 0);  // the rest of our environment is still there
}

TEST_CASE("spawn: a directory that is not there is an error, not a child running in ours") {
    REQUIRE(no_children_left());
    try {
        proc::spawn({.argv = {"true"}, .cwd = "/nonexistent-tn-dir"});
        FAIL("spawn succeeded");
    } catch (const Error& e) {
        CHECK(e.code() == ExitCode::unavailable);
        CHECK(std::string(e.what()).find("/nonexistent-tn-dir") != std::string::npos);
    }
    CHECK(no_children_left());
}

TEST_CASE("spawn: a program that cannot be run is an error and leaves no zombie behind") {
    REQUIRE(no_children_left());
    for (const char* prog : {"/nonexistent/tn-prog", "/etc/hostname", "tn-no-such-program-anywhere"}) {
        INFO(prog);
        try {
            proc::spawn({.argv = {prog}});
            FAIL("spawn succeeded");
        } catch (const Error& e) {
            CHECK(e.code() == ExitCode::unavailable);
            CHECK(std::string(e.what()).rfind("cannot run "s + prog + ": ", 0) == 0);
        }
        CHECK(no_children_left());
    }
}

TEST_CASE("spawn: own_session makes the child a session and group leader; it outlives spawn()") {
    auto c = proc::spawn({.argv = {"sleep", "1000"}, .own_session = true, .in = proc::Input::null});
    CHECK(::getpgid(c.pid) == c.pid);
    CHECK(::getsid(c.pid) == c.pid);
    CHECK(::waitpid(c.pid, nullptr, WNOHANG) == 0);  // still running: nothing killed it on the way out
    REQUIRE(::kill(-c.pid, SIGTERM) == 0);
    int st = proc::wait_status(c.pid);
    CHECK(WIFSIGNALED(st));
    CHECK(WTERMSIG(st) == SIGTERM);
    CHECK(proc::shell_code(st) == 128 + SIGTERM);
}

TEST_CASE("spawn: search_first, then the child's PATH") {
    auto [out, code] =
        run({.argv = {"true"}, .search_first = {"/nonexistent", "/usr/bin"}, .env = {{"PATH", "/nonexistent"}}});
    CHECK(code == 0);
    CHECK_THROWS_AS(proc::spawn({.argv = {"true"}, .env = {{"PATH", "/nonexistent"}}}), Error);
    CHECK_THROWS_AS(proc::spawn({.argv = {}}), Error);
}
