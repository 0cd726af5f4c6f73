// What each group may claim on the route's shared public surfaces: HTTP vhost names (custom_domains)
// and remote_port listeners. The route's config lists them per group (nothing when absent), and a
// name or port a group let go stays reserved for that group for a grace period, so that another
// group cannot take it in the seconds a vnet needs to reconnect. Pure: `now` comes in.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tn::relay {

struct PortRange {
    std::uint16_t lo = 0, hi = 0;
    bool operator==(const PortRange& o) const { return lo == o.lo && hi == o.hi; }
};

struct GroupClaims {
    std::vector<std::string> domains;  // normalized: "b.example.org" (exactly it) or "*.a.example.org" (every name under it)
    std::vector<PortRange> ports;
    bool operator==(const GroupClaims& o) const { return domains == o.domains && ports == o.ports; }
};

// A group's domain pattern, lowercased. "*" alone and a wildcard over a top-level domain ("*.com")
// are refused: no group may own a whole TLD's names. Throws tn::ParseError.
std::string normalize_domain_pattern(std::string_view pattern);
// "6000" or "7000-7100" (1-65535, lo <= hi). Throws tn::ParseError.
PortRange parse_port_range(std::string_view s);

// `domain` is a normalized custom domain (maybe "*.x"); true when a pattern covers all it names.
bool domain_allowed(const GroupClaims& g, std::string_view domain);
bool port_allowed(const GroupClaims& g, std::uint16_t port);

class Reservations {
public:
    using Clock = std::chrono::steady_clock;
    explicit Reservations(Clock::duration grace) : grace_(grace) {}
    // A serve of `group` let go of these: held for it until now + grace.
    void release(const std::string& group, const std::vector<std::string>& domains, std::uint16_t port, Clock::time_point now);
    // The other group that still holds `domain` / `port` at `now`, if any (its own group may retake it).
    std::optional<std::string> domain_holder(std::string_view domain, const std::string& group, Clock::time_point now) const;
    std::optional<std::string> port_holder(std::uint16_t port, const std::string& group, Clock::time_point now) const;
    // Taken again (by its group): no longer a reservation.
    void claimed(const std::vector<std::string>& domains, std::uint16_t port);
    void expire(Clock::time_point now);
    std::size_t size() const { return domains_.size() + ports_.size(); }

private:
    struct Hold {
        std::string group;
        Clock::time_point until;
    };
    Clock::duration grace_;
    std::map<std::string, Hold, std::less<>> domains_;
    std::map<std::uint16_t, Hold> ports_;
};

}  // namespace tn::relay
