// The test-only clock factor (see time_scale.hpp).
#include "relay/time_scale.hpp"

#include <cstdlib>

#include "base/error.hpp"

namespace tn::relay {

double time_scale_from_env() {
    const char* v = std::getenv("TN_RELAY_TIME_SCALE");
    if (!v || !*v) return 1.0;
    char* end = nullptr;
    double d = std::strtod(v, &end);
    if (*end || !(d > 0 && d <= 1)) throw Error(ExitCode::config, "TN_RELAY_TIME_SCALE must be a number in (0, 1]");
    return d;
}

}  // namespace tn::relay
