// tn-watch's restart delay on top of tn::Backoff; a stable run forgives earlier failures.
#include "supervise/backoff.hpp"

#include "base/error.hpp"

namespace tn::supervise {

namespace {
BackoffPolicy checked(const BackoffSettings& s) {
    // The user's words (--backoff-* flags) before tn::Backoff's own checks.
    if (s.initial.count() < 0 || s.max.count() < 0 || s.stable_after.count() < 0)
        throw Error(ExitCode::usage, "backoff durations must not be negative");
    if (s.factor < 1.0) throw Error(ExitCode::usage, "backoff factor must be at least 1");
    return BackoffPolicy{s.initial, s.max, s.factor, 1.0, 1.0};  // no jitter: one child, no herd
}
}  // namespace

Backoff::Backoff(BackoffSettings s) : s_(s), b_(checked(s)) {
    if (s_.max < s_.initial) s_.max = s_.initial;
}

Duration Backoff::peek(Duration run_time) const {
    return run_time >= s_.stable_after ? tn::Backoff(b_.policy()).base() : b_.base();
}

Duration Backoff::next(Duration run_time) {
    if (run_time >= s_.stable_after) b_.reset();
    return b_.next(1.0);
}

}  // namespace tn::supervise
