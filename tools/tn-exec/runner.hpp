// tn-exec's subcommand runners and the fan-out over many hosts.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/log.hpp"
#include "options.hpp"
#include "output.hpp"
#include "ssh/session.hpp"

namespace tn::exec {

// Connects (through the -J jump host when set, which is checked and logged in the same way), applies
// the host-key policy and authenticates (agent, then identity files, then the password source).
// Throws tn::Error: unreachable 69, host key or auth refused 77.
ssh::Session open_session(const Target& t);

// The work for one host; returns its exit code, throws tn::Error for a failure of our own.
using HostJob = std::function<int(const Target&, HostOutput&)>;

// Runs `job` for every target, at most `parallel` at a time, each in its own thread with its own
// session. One host's failure never stops the others. Returns 0 if every host returned 0, else
// 255 if any host failed on our side, else the largest remote exit code.
int for_each_host(const std::vector<Target>& targets, int parallel, Output& out, const log::Logger& log,
                  const HostJob& job);

int run_main(const SshOptions& ssh, const FanOut& fan, const RunOptions& o, const log::Logger& log);
int put_main(const SshOptions& ssh, const FanOut& fan, const TransferOptions& o, const log::Logger& log);
int get_main(const SshOptions& ssh, const FanOut& fan, const TransferOptions& o, const log::Logger& log);

}  // namespace tn::exec
