// tn-route's entry points behind main: run the relay, print its status, print its fingerprint.
#pragma once

#include <ostream>

#include "base/log.hpp"
#include "route_config.hpp"

namespace tn::route {

int run_route(RouteConfig cfg, const log::Logger& log);
// status --json --limit N --after ID: one page of vnets (limit 0: all of them, the default).
struct StatusPage {
    unsigned limit = 0;
    std::uint32_t after = 0;
};
int print_status(const RouteConfig& cfg, bool json, std::ostream& out, StatusPage page = {});
int print_fingerprint(const RouteConfig& cfg, const log::Logger& log, std::ostream& out);

}  // namespace tn::route
