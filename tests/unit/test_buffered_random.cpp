// BufferedRandom: RAND_bytes goes through it, never repeats itself, and a forked child does not
// replay the parent's buffered bytes.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/rand.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <set>
#include <string>

#include "ssh/buffered_random.hpp"

namespace {

std::string draw(int n) {
    std::string s(static_cast<size_t>(n), '\0');
    REQUIRE(RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), n) == 1);
    return s;
}

}  // namespace

TEST_CASE("BufferedRandom serves RAND_bytes and RAND_priv_bytes without repeating a byte string") {
    tn::ssh::BufferedRandom rng;
    REQUIRE(rng.installed());
    CHECK(RAND_get_rand_method() != RAND_OpenSSL());
    std::set<std::string> seen;
    for (int i = 0; i < 2000; ++i) seen.insert(draw(16));  // crosses several 4 KiB refills
    CHECK(seen.size() == 2000);
    CHECK(draw(5000) != draw(5000));  // large requests bypass the buffer
    CHECK(draw(100000).size() == 100000);  // past the DRBG's 64 KiB request limit
    std::array<unsigned char, 32> a{}, b{};
    REQUIRE(RAND_priv_bytes(a.data(), 32) == 1);
    REQUIRE(RAND_priv_bytes(b.data(), 32) == 1);
    CHECK(a != b);
    CHECK(RAND_status() == 1);
    CHECK(RAND_bytes(a.data(), -1) == 0);
}

TEST_CASE("BufferedRandom gives a forked child different bytes than its parent") {
    tn::ssh::BufferedRandom rng;
    REQUIRE(rng.installed());
    draw(16);  // the buffer now holds bytes the child inherits
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        unsigned char buf[32];
        int ok = RAND_bytes(buf, sizeof buf);
        ssize_t w = ok == 1 ? write(fds[1], buf, sizeof buf) : -1;
        _exit(w == static_cast<ssize_t>(sizeof buf) ? 0 : 1);
    }
    close(fds[1]);
    std::string child(32, '\0');
    ssize_t got = read(fds[0], child.data(), child.size());
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    REQUIRE(got == 32);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(draw(32) != child);
}

TEST_CASE("BufferedRandom gives the default method back when it ends") {
    { tn::ssh::BufferedRandom rng; }
    CHECK(RAND_get_rand_method() == RAND_OpenSSL());
}
