// The tn-keysetup runner: make the key, install it, prove key-only login (or just check it).
#pragma once

#include <ostream>

#include "base/log.hpp"
#include "options.hpp"

namespace tn::keysetup {

// Returns the process exit code; throws tn::Error for failures that carry their own code.
// Dry-run plan lines go to `out` (stdout): they are the result the user asked for.
int run(const Options& opts, const log::Logger& log, std::ostream& out);

}  // namespace tn::keysetup
