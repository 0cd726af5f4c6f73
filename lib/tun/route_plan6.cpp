// IPv6 route plans (route_plan6.hpp): no I/O, the runners run ip(8) with what these return.
#include "tun/route_plan6.hpp"

#include <algorithm>
#include <sstream>

#include "base/error.hpp"

namespace tn::tun {

std::vector<Route6> plan_routes6(const std::vector<Route6>& pushed) {
    std::vector<Route6> out;
    auto add = [&](const Route6& r) {
        if (std::find(out.begin(), out.end(), r) == out.end()) out.push_back(r);
    };
    for (auto& r : pushed) {
        if (r.prefix != 0) {
            add(r);
            continue;
        }
        Route6 high;
        high.addr[0] = 0x80;
        high.prefix = 1;
        add(Route6{Ip6{}, 1});
        add(high);
    }
    return out;
}

std::optional<Route6> covering_route6(const std::vector<Route6>& pushed, const Ip6& server) {
    for (auto& r : pushed)
        if (covers(r, server)) return r;
    return std::nullopt;
}

std::optional<std::string> overlapping_route6(std::string_view table, const Route6& subnet6, const std::string& tun) {
    std::istringstream in{std::string(table)};
    for (std::string line; std::getline(in, line);) {
        std::istringstream ws(line);
        std::vector<std::string> w;
        for (std::string x; ws >> x;) w.push_back(x);
        if (w.empty() || w[0] == "default") continue;
        // A route type first ("unreachable fd00::/64 ...", "blackhole ..."): the destination follows.
        std::size_t at = w[0].find(':') == std::string::npos && w.size() > 1 ? 1 : 0;
        Route6 dst;
        try {
            dst = w[at].find('/') == std::string::npos ? Route6{parse_ipv6(w[at]), 128} : parse_cidr6(w[at]);
        } catch (const ParseError&) {
            continue;
        }
        if (dst.prefix == 0 || !overlap(dst, subnet6)) continue;
        auto dev = std::find(w.begin(), w.end(), "dev");
        if (dev != w.end() && dev + 1 != w.end() && dev[1] == tun) continue;
        return line;
    }
    return std::nullopt;
}

}  // namespace tn::tun
