// tn-route's entry points behind main: run the relay, print its status, print its fingerprint.
#pragma once

#include <ostream>

#include "base/log.hpp"
#include "route_config.hpp"

namespace tn::route {

int run_route(RouteConfig cfg, const log::Logger& log);
int print_status(const RouteConfig& cfg, bool json, std::ostream& out);
int print_fingerprint(const RouteConfig& cfg, const log::Logger& log, std::ostream& out);
// TN_RELAY_TIME_SCALE (0 < s <= 1): a test-only factor for heartbeats and timers; 1 otherwise.
double time_scale_from_env();

}  // namespace tn::route
