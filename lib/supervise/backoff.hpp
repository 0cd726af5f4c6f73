// Backoff: the default restart delay of tn-watch, exponential with a cap and a reset after a stable run.
#pragma once

#include <chrono>

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
    explicit Backoff(BackoffSettings s = {});
    // The delay before restarting a child that ran for `run_time`; advances the failure count.
    Duration next(Duration run_time);
    // The delay next() would return for `run_time`, without changing anything.
    Duration peek(Duration run_time) const;
    int failures() const { return failures_; }
    const BackoffSettings& settings() const { return s_; }

private:
    Duration delay_for(int failures) const;
    BackoffSettings s_;
    int failures_ = 0;  // consecutive runs shorter than stable_after
};

}  // namespace tn::supervise
