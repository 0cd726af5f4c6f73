// Exponential restart delay with a cap; a stable run forgives earlier failures.
#include "supervise/backoff.hpp"

#include <algorithm>
#include <cmath>

#include "base/error.hpp"

namespace tn::supervise {

Backoff::Backoff(BackoffSettings s) : s_(s) {
    if (s_.initial.count() < 0 || s_.max.count() < 0 || s_.stable_after.count() < 0)
        throw Error(ExitCode::usage, "backoff durations must not be negative");
    if (s_.factor < 1.0) throw Error(ExitCode::usage, "backoff factor must be at least 1");
    if (s_.max < s_.initial) s_.max = s_.initial;
}

Duration Backoff::delay_for(int failures) const {
    // Computed in double so a long failure streak saturates at the cap instead of overflowing.
    double ms = static_cast<double>(s_.initial.count()) * std::pow(s_.factor, failures);
    double cap = static_cast<double>(s_.max.count());
    return Duration(static_cast<Duration::rep>(std::min(ms, cap)));
}

Duration Backoff::peek(Duration run_time) const {
    int f = run_time >= s_.stable_after ? 0 : failures_;
    return delay_for(f);
}

Duration Backoff::next(Duration run_time) {
    if (run_time >= s_.stable_after) failures_ = 0;
    Duration d = delay_for(failures_);
    // Stop counting once the cap is reached: the count only matters until then.
    if (delay_for(failures_ + 1) > d) ++failures_;
    return d;
}

}  // namespace tn::supervise
