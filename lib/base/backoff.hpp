// Backoff: the one capped exponential delay of tn (tn-forward's and tn-vnet's reconnects, tn-watch's
// restarts). Pure: the caller supplies the randomness, so tests are exact.
//
// The rule: attempt n (from 0) waits base(n) = min(initial × factor^n, cap), scaled by a jitter
// multiplier j that the caller draws uniformly from the policy's [jitter_min, jitter_max] (`jitter()`
// maps a uniform u in [0, 1] onto it; a j outside the range is clamped), so that many clients cut off
// together do not come back in lockstep. reset() starts over at `initial`.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

namespace tn {

struct BackoffPolicy {
    std::chrono::milliseconds initial{500};
    std::chrono::milliseconds cap{30000};
    double factor = 2.0;
    double jitter_min = 1.0, jitter_max = 1.0;  // 1, 1: no jitter
};

class Backoff {
public:
    using ms = std::chrono::milliseconds;
    // Throws std::invalid_argument on a negative delay, a factor below 1 or an empty jitter range
    // (callers that read these from a user's config check them first, with the user's words).
    explicit Backoff(BackoffPolicy p) : p_(p) {
        if (p_.initial.count() < 0 || p_.cap.count() < 0) throw std::invalid_argument("backoff durations must not be negative");
        if (!(p_.factor >= 1.0)) throw std::invalid_argument("backoff factor must be at least 1");
        if (!(p_.jitter_min > 0 && p_.jitter_min <= p_.jitter_max)) throw std::invalid_argument("bad backoff jitter range");
        if (p_.cap < p_.initial) p_.cap = p_.initial;
    }
    // tn-forward's reconnect: doubling, jitter in [0.5, 1] (never later than the doubled delay).
    Backoff(ms initial, ms cap) : Backoff(BackoffPolicy{initial, cap, 2.0, 0.5, 1.0}) {}

    // The delay of the next attempt before jitter.
    ms base() const {
        // In double, so a long failure streak saturates at the cap instead of overflowing.
        double d = static_cast<double>(p_.initial.count()) * std::pow(p_.factor, attempt_);
        return ms(static_cast<ms::rep>(std::min(d, static_cast<double>(p_.cap.count()))));
    }
    // The jitter multiplier for a uniform draw u in [0, 1].
    double jitter(double u) const { return p_.jitter_min + (p_.jitter_max - p_.jitter_min) * std::clamp(u, 0.0, 1.0); }
    // The next delay, base() × j (j clamped to the policy's range); counts the attempt. The count
    // stops once the cap is reached: from there on every delay is the cap.
    ms next(double j) {
        auto b = base();
        if (b < p_.cap) ++attempt_;
        j = std::clamp(j, p_.jitter_min, p_.jitter_max);
        return ms(static_cast<ms::rep>(static_cast<double>(b.count()) * j));
    }
    void reset() { attempt_ = 0; }
    // Attempts counted since the last reset (it stops growing at the cap).
    int attempts() const { return attempt_; }
    const BackoffPolicy& policy() const { return p_; }

private:
    BackoffPolicy p_;
    int attempt_ = 0;
};

}  // namespace tn
