// The tn-watch subcommands other than `run`: start/ensure (detach), stop, status, logs.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

#include "base/log.hpp"
#include "options.hpp"

namespace tn::watch {

// Detaches a supervisor (setsid, double fork, stdin /dev/null, output to the log) and waits only until
// it reports ready. `ensure`: an already running supervisor is success; for `start` it is exit 75.
int start_detached(const RunPlan& plan, bool ensure, const log::Logger& log);

// SIGTERM to the supervisor, which stops its child's group; waits until the lock is free.
// `timeout_s` < 0: the supervisor's grace period plus 5 s.
int stop(const std::string& name, double timeout_s, const log::Logger& log);

// Prints one name (exit 0 running, 1 not) or every known name; --json gives one JSON document.
int status(const std::optional<std::string>& name, bool json, std::ostream& out);

// Prints the log (rotated files first); `follow` keeps printing what is appended, across rotations.
int logs(const std::string& name, bool follow, std::ostream& out);

}  // namespace tn::watch
