// Backoff: tn-watch's default restart delay: tn::Backoff (base/backoff.hpp, the one backoff rule of
// tn) without jitter, plus what a supervisor needs: a run that lasted `stable_after` forgives earlier
// failures, and a peek that changes nothing.
#pragma once

#include <chrono>

#include "base/backoff.hpp"

namespace tn::supervise {

using Clock = std::chrono::steady_clock;
using Duration = std::chrono::milliseconds;

struct BackoffSettings {
    Duration initial{1000};       // delay after the first unexpected exit
    Duration max{30000};          // the cap, as tn-forward's --backoff-max
    double factor = 2.0;          // growth per consecutive quick failure
    Duration stable_after{10000}; // a run at least this long resets the delay to `initial`
};

// Pure: feed it how long each run lasted, it answers how long to wait before the next start.
class Backoff {
public:
    // Throws tn::Error(usage) on a negative duration or a factor below 1.
    explicit Backoff(BackoffSettings s = {});
    // The delay before restarting a child that ran for `run_time`; advances the failure count.
    Duration next(Duration run_time);
    // The delay next() would return for `run_time`, without changing anything.
    Duration peek(Duration run_time) const;
    // Consecutive quick failures counted (the count stops once the delay reached the cap).
    int failures() const { return b_.attempts(); }
    const BackoffSettings& settings() const { return s_; }

private:
    BackoffSettings s_;
    tn::Backoff b_;
};

}  // namespace tn::supervise
