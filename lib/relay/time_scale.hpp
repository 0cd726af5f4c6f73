// The test-only clock factor both relay tools read from TN_RELAY_TIME_SCALE.
#pragma once

namespace tn::relay {

// TN_RELAY_TIME_SCALE (0 < s <= 1) shrinks heartbeats, timeouts and unserve timers so tests need not
// sleep minutes; unset means 1. Anything else is a config error (78).
double time_scale_from_env();

}  // namespace tn::relay
