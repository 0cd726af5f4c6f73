// tn::Epoll (lib/base/epoll.hpp), the loop primitive of tn-tun's client and server runners.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include "base/epoll.hpp"

TEST_CASE("Epoll reports a readable descriptor by its fd, level-triggered, and nothing on timeout") {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    tn::UniqueFd a(sv[0]), b(sv[1]);
    tn::Epoll ep;
    ep.add(a.get());
    CHECK(ep.wait(0).empty());
    REQUIRE(::write(b.get(), "x", 1) == 1);
    for (int round = 0; round < 2; ++round) {  // level-triggered: still ready until read
        auto ready = ep.wait(1000);
        REQUIRE(ready.size() == 1);
        CHECK(ready[0].data.fd == a.get());
        CHECK((ready[0].events & EPOLLIN) != 0);
    }
    char c;
    REQUIRE(::read(a.get(), &c, 1) == 1);
    CHECK(ep.wait(0).empty());
}

TEST_CASE("Epoll refuses a descriptor the kernel cannot watch, with a clear error") {
    tn::Epoll ep;
    CHECK_THROWS_AS(ep.add(-1), tn::Error);
    CHECK_THROWS_WITH(ep.add(-1), Catch::Contains("epoll_ctl"));
}
