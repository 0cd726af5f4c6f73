// Route planning for pushed routes: def1 halves, the host route to the server, the state file.
#include "tun/route_plan.hpp"

#include <cctype>
#include <cstdlib>
#include <sstream>

#include "base/error.hpp"

namespace tn::tun {
namespace {

std::vector<std::string> words(std::string_view s) {
    std::vector<std::string> out;
    std::istringstream in{std::string(s)};
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

std::optional<HostRoute> parse_route(const std::vector<std::string>& w) {
    // dst [via A] dev D
    HostRoute r;
    std::size_t i = 0;
    try {
        if (w.size() != 3 && w.size() != 5) return std::nullopt;
        r.dst = parse_cidr(w[i++]);
        if (w.size() == 5) {
            if (w[i++] != "via") return std::nullopt;
            r.via = parse_ipv4(w[i++]);
        }
    } catch (const ParseError&) {
        return std::nullopt;
    }
    if (w[i++] != "dev" || !valid_ifname(w[i])) return std::nullopt;
    r.dev = w[i];
    return r;
}

}  // namespace

bool valid_ifname(std::string_view s) {
    if (s.empty() || s.size() > 15) return false;
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '@')) return false;
    return true;
}

std::vector<std::string> HostRoute::ip_args() const {
    std::vector<std::string> a{cidr_str(dst)};
    if (via) a.insert(a.end(), {"via", ipv4_str(*via)});
    a.insert(a.end(), {"dev", dev});
    return a;
}

std::string HostRoute::str() const {
    std::string s;
    for (auto& a : ip_args()) s += (s.empty() ? "" : " ") + a;
    return s;
}

bool covers(const Route& r, std::uint32_t addr) {
    std::uint32_t mask = r.prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - r.prefix);
    return (addr & mask) == (r.addr & mask);
}

std::optional<Underlay> parse_route_get(std::string_view out) {
    // e.g. "192.0.2.1 via 10.0.0.1 dev eth0 src 10.0.0.2 uid 0 \    cache" or "local 127.0.0.1 dev lo ..."
    auto w = words(out);
    Underlay u;
    if (!w.empty() && w[0] == "local") u.local = true;
    for (std::size_t i = 0; i + 1 < w.size(); ++i) {
        try {
            if (w[i] == "via" && !u.via) u.via = parse_ipv4(w[i + 1]);
        } catch (const ParseError&) {
            return std::nullopt;  // an IPv6 gateway for an IPv4 address: not a path we can pin
        }
        if (w[i] == "dev" && u.dev.empty()) u.dev = w[i + 1];
    }
    if (u.dev.empty() || !valid_ifname(u.dev)) return std::nullopt;
    return u;
}

std::optional<Underlay> underlay_from_table(std::string_view table, std::uint32_t server, const std::string& tun) {
    std::optional<Underlay> best;
    int best_prefix = -1;
    long best_metric = 0;
    std::istringstream in{std::string(table)};
    for (std::string line; std::getline(in, line);) {
        auto w = words(line);
        if (w.empty()) continue;
        Route dst;
        try {
            if (w[0] == "default") dst = Route{0, 0};
            else if (w[0].find('/') != std::string::npos) dst = parse_cidr(w[0]);
            else dst = Route{parse_ipv4(w[0]), 32};
        } catch (const ParseError&) {
            continue;  // blackhole, unreachable, prohibit, throw ...: not a path
        }
        if (!covers(dst, server)) continue;
        long metric = 0;
        for (std::size_t i = 0; i + 1 < w.size(); ++i)
            if (w[i] == "metric") metric = std::strtol(w[i + 1].c_str(), nullptr, 10);
        auto u = parse_route_get(line);
        if (!u || u->dev == tun) continue;
        if (dst.prefix > best_prefix || (dst.prefix == best_prefix && metric < best_metric)) {
            best = u;
            best_prefix = dst.prefix;
            best_metric = metric;
        }
    }
    return best;
}

std::vector<HostRoute> plan_routes(const std::vector<Route>& pushed, const std::string& tun,
                                   std::optional<std::uint32_t> server, const std::optional<Underlay>& underlay) {
    std::vector<HostRoute> through_tun;
    auto add = [&](Route r) {
        HostRoute h{r, std::nullopt, tun};
        for (auto& x : through_tun)
            if (x.dst == r) return;
        through_tun.push_back(h);
    };
    for (auto r : pushed) {
        if (r.prefix == 0) {
            add(Route{0x00000000, 1});
            add(Route{0x80000000, 1});
        } else {
            add(r);
        }
    }
    std::vector<HostRoute> plan;
    bool captured = false;
    for (auto& h : through_tun) captured = captured || (server && covers(h.dst, *server));
    if (captured && underlay && !underlay->local && underlay->dev != tun)
        plan.push_back(HostRoute{Route{*server, 32}, underlay->via, underlay->dev});
    plan.insert(plan.end(), through_tun.begin(), through_tun.end());
    return plan;
}

std::string format_routes(const std::vector<HostRoute>& routes) {
    std::string s;
    for (auto& r : routes) s += r.str() + "\n";
    return s;
}

std::vector<std::vector<std::string>> word_lines(std::string_view text) {
    std::vector<std::vector<std::string>> out;
    std::istringstream in{std::string(text)};
    for (std::string line; std::getline(in, line);)
        if (auto w = words(line); !w.empty()) out.push_back(std::move(w));
    return out;
}

std::vector<HostRoute> parse_routes(std::string_view text) {
    std::vector<HostRoute> out;
    for (auto& w : word_lines(text))
        if (auto r = parse_route(w)) out.push_back(*r);
    return out;
}

}  // namespace tn::tun
