// tn::Backoff, the one backoff rule of tn (base/backoff.hpp), and the policies of its three users:
// tn-forward's reconnects, tn-vnet's reconnects (relay/auth.hpp) and tn-watch's restarts
// (supervise/backoff.hpp, checked in tests/watch).
#include <catch2/catch.hpp>

#include <chrono>
#include <stdexcept>

#include "base/backoff.hpp"

using namespace tn;
using std::chrono::milliseconds;

TEST_CASE("backoff: initial x factor^n up to the cap, scaled by a jitter clamped to the policy's range") {
    Backoff b(BackoffPolicy{milliseconds(100), milliseconds(1000), 3.0, 0.5, 2.0});
    CHECK(b.base() == milliseconds(100));
    CHECK(b.next(1.0) == milliseconds(100));
    CHECK(b.next(2.0) == milliseconds(600));    // 300 x 2
    CHECK(b.next(9.0) == milliseconds(1800));   // 900 x 2: the multiplier is clamped to 2
    CHECK(b.next(0.1) == milliseconds(500));    // the cap, x 0.5
    CHECK(b.attempts() == 3);                   // the count stops at the cap
    for (int i = 0; i < 1000; ++i) b.next(1.0);  // a long streak neither overflows nor grows
    CHECK(b.base() == milliseconds(1000));
    b.reset();
    CHECK(b.next(1.0) == milliseconds(100));
}

TEST_CASE("backoff: jitter(u) maps a uniform draw onto the range, both ends included") {
    Backoff b(BackoffPolicy{milliseconds(1000), milliseconds(1000), 2.0, 0.8, 1.2});
    CHECK(b.jitter(0.0) == Approx(0.8));
    CHECK(b.jitter(0.5) == Approx(1.0));
    CHECK(b.jitter(1.0) == Approx(1.2));
    CHECK(b.jitter(7.0) == Approx(1.2));
    CHECK(b.next(b.jitter(0.0)) == milliseconds(800));
    Backoff none(BackoffPolicy{milliseconds(10), milliseconds(40), 2.0, 1.0, 1.0});
    CHECK(none.next(none.jitter(0.3)) == milliseconds(10));  // no range, no jitter (tn-watch)
}

TEST_CASE("backoff: tn-forward's policy doubles and jitters down only") {
    Backoff b(milliseconds(500), milliseconds(4000));
    CHECK(b.policy().jitter_min == 0.5);
    CHECK(b.policy().jitter_max == 1.0);
    CHECK(b.next(1.0) == milliseconds(500));
    CHECK(b.next(b.jitter(0.0)) == milliseconds(500));  // 1000 x 0.5
}

TEST_CASE("backoff: a cap below the initial delay is raised to it; bad policies are refused") {
    Backoff b(BackoffPolicy{milliseconds(300), milliseconds(100), 2.0, 1.0, 1.0});
    CHECK(b.next(1.0) == milliseconds(300));
    CHECK(b.next(1.0) == milliseconds(300));
    CHECK_THROWS_AS(Backoff(BackoffPolicy{milliseconds(-1), milliseconds(1), 2.0, 1.0, 1.0}), std::invalid_argument);
    CHECK_THROWS_AS(Backoff(BackoffPolicy{milliseconds(1), milliseconds(1), 0.5, 1.0, 1.0}), std::invalid_argument);
    CHECK_THROWS_AS(Backoff(BackoffPolicy{milliseconds(1), milliseconds(1), 2.0, 1.2, 0.8}), std::invalid_argument);
    CHECK_THROWS_AS(Backoff(BackoffPolicy{milliseconds(1), milliseconds(1), 2.0, 0.0, 1.0}), std::invalid_argument);
}
