// Group claims on vhost names and public ports, and the reservations that outlive a reconnect.
#include "relay/claims.hpp"

#include <charconv>

#include "base/error.hpp"
#include "relay/registry.hpp"

namespace tn::relay {

std::string normalize_domain_pattern(std::string_view pattern) {
    if (pattern == "*") throw ParseError("'*' would give this group every host name");
    return normalize_domain(pattern);  // refuses "*.com" too
}

PortRange parse_port_range(std::string_view s) {
    auto num = [&](std::string_view t) {
        unsigned v = 0;
        auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        if (t.empty() || ec != std::errc() || p != t.data() + t.size() || v < 1 || v > 65535)
            throw ParseError("'" + std::string(s) + "' is not a port (1-65535) or a range \"LO-HI\"");
        return static_cast<std::uint16_t>(v);
    };
    auto dash = s.find('-');
    if (dash == std::string_view::npos) {
        auto p = num(s);
        return {p, p};
    }
    PortRange r{num(s.substr(0, dash)), num(s.substr(dash + 1))};
    if (r.lo > r.hi) throw ParseError("port range '" + std::string(s) + "' ends before it starts");
    return r;
}

bool domain_allowed(const GroupClaims& g, std::string_view domain) {
    for (const auto& p : g.domains) {
        if (p == domain) return true;
        if (p.rfind("*.", 0) != 0) continue;
        // "*.a.example.org" covers x.a.example.org, x.y.a.example.org and the wildcard *.x.a.example.org.
        std::string_view suffix(p.data() + 1, p.size() - 1);  // ".a.example.org"
        if (domain.size() > suffix.size() && domain.substr(domain.size() - suffix.size()) == suffix &&
            domain.substr(0, domain.size() - suffix.size()) != "*")
            return true;
    }
    return false;
}

bool port_allowed(const GroupClaims& g, std::uint16_t port) {
    for (const auto& r : g.ports)
        if (port >= r.lo && port <= r.hi) return true;
    return false;
}

void Reservations::release(const std::string& group, const std::vector<std::string>& domains, std::uint16_t port,
                           Clock::time_point now) {
    for (const auto& d : domains) domains_[d] = Hold{group, now + grace_};
    if (port) ports_[port] = Hold{group, now + grace_};
}

std::optional<std::string> Reservations::domain_holder(std::string_view domain, const std::string& group, Clock::time_point now) const {
    auto it = domains_.find(domain);
    if (it == domains_.end() || it->second.until <= now || it->second.group == group) return std::nullopt;
    return it->second.group;
}

std::optional<std::string> Reservations::port_holder(std::uint16_t port, const std::string& group, Clock::time_point now) const {
    auto it = ports_.find(port);
    if (it == ports_.end() || it->second.until <= now || it->second.group == group) return std::nullopt;
    return it->second.group;
}

void Reservations::claimed(const std::vector<std::string>& domains, std::uint16_t port) {
    for (const auto& d : domains) domains_.erase(d);
    if (port) ports_.erase(port);
}

void Reservations::expire(Clock::time_point now) {
    std::erase_if(domains_, [&](const auto& kv) { return kv.second.until <= now; });
    std::erase_if(ports_, [&](const auto& kv) { return kv.second.until <= now; });
}

}  // namespace tn::relay
