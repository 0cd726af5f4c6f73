// Per-source failure buckets for the route's AUTH.
#include "relay/rate_limit.hpp"

#include <algorithm>

namespace tn::relay {

double FailureLimiter::level(const Bucket& b, Clock::time_point now) const {
    auto gained = std::chrono::duration<double>(now - b.at) / std::chrono::duration<double>(refill_);
    return std::min(burst_, b.tokens + std::max(0.0, gained));
}

bool FailureLimiter::allowed(const std::string& source, Clock::time_point now) const {
    auto it = b_.find(source);
    return it == b_.end() || level(it->second, now) >= 1.0;
}

void FailureLimiter::failed(const std::string& source, Clock::time_point now) {
    auto it = b_.find(source);
    if (it == b_.end()) {
        if (b_.size() >= max_) {
            // Forget the sources whose buckets are full again; if none, the table stays bounded by
            // letting the newcomer go uncounted (its next failures are counted once there is room).
            std::erase_if(b_, [&](const auto& kv) { return level(kv.second, now) >= burst_; });
            if (b_.size() >= max_) return;
        }
        it = b_.emplace(source, Bucket{burst_, now}).first;
    }
    it->second.tokens = std::max(0.0, level(it->second, now) - 1.0);
    it->second.at = now;
}

}  // namespace tn::relay
