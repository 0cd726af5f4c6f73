// Unit tests for lib/base/proc_cmdline: splitting the kernel's NUL-separated argv, and reading a real
// child's /proc entry while it runs, after it became a zombie, and past the size limit.
#include <catch2/catch.hpp>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "base/proc_cmdline.hpp"

extern char** environ;

using namespace tn;
using namespace std::string_literals;
using Argv = std::vector<std::string>;

TEST_CASE("split_cmdline: NULs separate, the last NUL is optional, empty arguments stay") {
    CHECK(split_cmdline(""s) == Argv{});
    CHECK(split_cmdline("sh\0"s) == Argv{"sh"});
    CHECK(split_cmdline("sh"s) == Argv{"sh"});
    CHECK(split_cmdline("sh\0-c\0a b\0"s) == Argv{"sh", "-c", "a b"});
    CHECK(split_cmdline("x\0\0y\0"s) == Argv{"x", "", "y"});
    CHECK(split_cmdline("\0"s) == Argv{""});
    // A process that rewrote its title without NULs is one argument.
    CHECK(split_cmdline("sshd: user [priv]"s) == Argv{"sshd: user [priv]"});
}

TEST_CASE("read_cmdline reads a live child's argv, and nothing once it is a zombie") {
    int in[2], out[2];
    REQUIRE(::pipe(in) == 0);
    REQUIRE(::pipe(out) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    // The child says it runs, then waits on stdin (our pipe) until we close it; an empty argument and
    // a space travel as such.
    Argv want{"/bin/sh", "-c", "echo up; read line", "tn-test", "", "a b", "\xc3\xbc"};
    std::vector<char*> argv;
    for (auto& a : want) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    REQUIRE(::posix_spawn(&pid, "/bin/sh", &fa, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    // posix_spawn returns inside execve, before the kernel has set the new argv: wait for the shell's word.
    char up[3] = {};
    REQUIRE(::read(out[0], up, sizeof up) == 3);
    ::close(out[0]);

    CHECK(read_cmdline(pid) == want);
    CHECK(read_cmdline(pid, 8) == Argv{});  // longer than the limit: nothing, not a cut-off argv

    ::close(in[1]);
    siginfo_t si{};
    REQUIRE(::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOWAIT) == 0);  // a zombie now
    CHECK(read_cmdline(pid) == Argv{});
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
}

TEST_CASE("read_cmdline of this process and of no process") {
    auto self = read_cmdline(::getpid());
    REQUIRE_FALSE(self.empty());
    CHECK(self[0].find("unit_base") != std::string::npos);
    CHECK(read_cmdline(0) == Argv{});
    CHECK(read_cmdline(-1) == Argv{});
}
