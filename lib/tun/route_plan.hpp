// What a tn-tun client adds to the host's routing table for the routes the server pushes, as a pure
// plan (tn-tun(1), "Routes"). A pushed default route becomes 0.0.0.0/1 + 128.0.0.0/1 through the TUN,
// as OpenVPN's def1 does: more specific than any default route, so the host's own default route is
// never replaced and comes back untouched. When a planned route covers the server's address, a host
// route to the server through the path it had before (the underlay) is added first, so the tunnel's
// own datagrams never enter the tunnel.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tun/wire.hpp"

namespace tn::tun {

// A Linux interface name as `ip` prints it (1 to 15 of [A-Za-z0-9-_.@]): what the state files and the
// plans accept before any of it goes into an ip(8) command line.
bool valid_ifname(std::string_view s);

// One route the client adds: `dst [via gateway] dev dev` in the main table.
struct HostRoute {
    Route dst;
    std::optional<std::uint32_t> via;
    std::string dev;
    bool operator==(const HostRoute&) const = default;
    // The arguments after `ip route add|del`.
    std::vector<std::string> ip_args() const;
    std::string str() const;  // the same, joined by spaces (one line of the state file)
};

// The path to the server before any of our routes, from `ip -4 route get ADDR` output.
struct Underlay {
    std::optional<std::uint32_t> via;
    std::string dev;
    bool local = false;  // the server is this host (no route can capture it)
};
std::optional<Underlay> parse_route_get(std::string_view out);
// The same from the main table itself (`ip -4 -o route show table main`): the most specific usable
// route covering `server` that does not go through `tun` (lowest metric among equals). For when the
// lookup points into the tunnel: the underlay changed (another network) and took our host route with it.
std::optional<Underlay> underlay_from_table(std::string_view table, std::uint32_t server, const std::string& tun);

// The routes to add, in order (a host route to the server first when one is needed). `server` is the
// server's IPv4 address (nullopt for an IPv6 server: IPv4 routes cannot capture it).
std::vector<HostRoute> plan_routes(const std::vector<Route>& pushed, const std::string& tun,
                                   std::optional<std::uint32_t> server, const std::optional<Underlay>& underlay);

bool covers(const Route& r, std::uint32_t addr);

// The words of each line of `text` that has any: the one reader of the state file, whose route lines
// and policy lines (route_plan_policy.hpp) each skip the other's and whatever does not parse.
std::vector<std::vector<std::string>> word_lines(std::string_view text);

// The state file: one route per line in str() form. Lines that do not parse as a route are skipped
// (the file is ours, 0600, but it is input all the same).
std::string format_routes(const std::vector<HostRoute>& routes);
std::vector<HostRoute> parse_routes(std::string_view text);

}  // namespace tn::tun
