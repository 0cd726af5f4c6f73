// FailureLimiter: failed authentications per source address, as a token bucket each (burst, then one
// more per `refill`), so that one address cannot try tokens fast, while others are not slowed at all.
// A source over its budget is refused before any proof is checked. Pure: `now` comes in.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <string>

namespace tn::relay {

class FailureLimiter {
public:
    using Clock = std::chrono::steady_clock;
    FailureLimiter(double burst = 10, Clock::duration refill = std::chrono::seconds(6), std::size_t max_sources = 4096)
        : burst_(burst), refill_(refill), max_(max_sources) {}
    bool allowed(const std::string& source, Clock::time_point now) const;
    void failed(const std::string& source, Clock::time_point now);
    std::size_t sources() const { return b_.size(); }

private:
    struct Bucket {
        double tokens;
        Clock::time_point at;
    };
    double level(const Bucket& b, Clock::time_point now) const;
    double burst_;
    Clock::duration refill_;
    std::size_t max_;
    std::map<std::string, Bucket> b_;
};

}  // namespace tn::relay
