// tn-exec serve --stdio: JSON Lines requests on stdin, events and one result per request on stdout,
// for programs that drove paramiko. The protocol is documented in tn-exec(1), SERVE.
#pragma once

#include "base/log.hpp"
#include "options.hpp"

namespace tn::exec {

// Longest request line; a longer one is skipped to its newline and answered with an error (exit 65).
constexpr std::size_t serve_max_line = 8 * 1024 * 1024;

// Serves until stdin ends; returns 0 then (each request's outcome is in its result object).
int serve_main(const SshOptions& ssh, const log::Logger& log);

}  // namespace tn::exec
