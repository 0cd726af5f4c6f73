// Backoff: capped exponential delays with jitter, reset after a stable run. Pure: the caller supplies
// the randomness, so tests are exact.
#pragma once

#include <algorithm>
#include <chrono>

namespace tn {

class Backoff {
public:
    using ms = std::chrono::milliseconds;
    Backoff(ms initial, ms cap) : initial_(initial), cap_(cap) {}

    // The next delay: initial * 2^attempt capped, then scaled by `jitter` in [0.5, 1.0] so that many
    // clients cut off together do not come back in lockstep.
    ms next(double jitter) {
        auto base = initial_;
        for (int i = 0; i < attempt_ && base < cap_; ++i) base *= 2;
        base = std::min(base, cap_);
        ++attempt_;
        jitter = std::clamp(jitter, 0.5, 1.0);
        return ms(static_cast<long long>(static_cast<double>(base.count()) * jitter));
    }
    void reset() { attempt_ = 0; }
    int attempts() const { return attempt_; }

private:
    ms initial_, cap_;
    int attempt_ = 0;
};

}  // namespace tn
