// Unit tests for lib/base/pidfd: a real child, waited on and signalled through its pidfd; the wait
// holds while it runs and ends once it has ended, before anyone reaps it.
#include <catch2/catch.hpp>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "base/pidfd.hpp"
#include "base/unique_fd.hpp"

extern char** environ;

using namespace tn;

TEST_CASE("pidfd: wait_exit waits while the process runs and ends once it is a zombie") {
    char sh[] = "/bin/sh", c[] = "-c", script[] = "exec sleep 600";
    char* argv[] = {sh, c, script, nullptr};
    pid_t pid = 0;
    REQUIRE(::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, argv, environ) == 0);
    UniqueFd fd(pidfd_open(pid));
    REQUIRE(fd);
    CHECK_FALSE(wait_exit(fd.get(), 0));
    CHECK_FALSE(wait_exit(fd.get(), 50));
    REQUIRE(pidfd_signal(fd.get(), SIGTERM) == 0);
    CHECK(wait_exit(fd.get(), -1));  // not reaped yet: a zombie has ended
    siginfo_t si{};
    REQUIRE(::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED) == 0);
    CHECK(si.si_status == SIGTERM);
    CHECK(pidfd_signal(fd.get(), SIGTERM) == -1);  // it is gone, and its pid may be someone else's now
    CHECK(errno == ESRCH);
}

TEST_CASE("pidfd: no process, no pidfd") {
    pid_t pid = 0;
    char t[] = "/bin/true";
    char* argv[] = {t, nullptr};
    REQUIRE(::posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ) == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);  // reaped: the pid names nothing now
    errno = 0;
    CHECK(pidfd_open(pid) == -1);
    CHECK(errno == ESRCH);
}
