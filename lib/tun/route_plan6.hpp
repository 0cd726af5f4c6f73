// IPv6 routes on a tn-tun host, as pure plans (tn-tun(1), "IPv6"): the routes a client adds for the
// IPv6 routes the server pushes, the check that none of them captures the server's own IPv6
// endpoint, and the server's check that subnet6 is not a network the host already routes.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tun/wire.hpp"

namespace tn::tun {

// The IPv6 routes a client adds through its TUN, in order: a pushed ::/0 becomes ::/1 + 8000::/1
// (more specific than any default route, so the host's own default route is never replaced, as for
// IPv4); duplicates once.
std::vector<Route6> plan_routes6(const std::vector<Route6>& pushed);

// The first pushed route that covers `server` (the server's IPv6 endpoint): through the tunnel, the
// tunnel's own datagrams would loop. Unlike IPv4, no host route is pinned for IPv6: such a push is
// refused.
std::optional<Route6> covering_route6(const std::vector<Route6>& pushed, const Ip6& server);

// The line of `ip -6 -o route show` output (`table`) whose destination overlaps `subnet6`, on a
// device other than `tun`; default routes do not count (subnet6 is more specific). nullopt: none.
std::optional<std::string> overlapping_route6(std::string_view table, const Route6& subnet6, const std::string& tun);

}  // namespace tn::tun
