// tn-vnet's entry points behind main: run the agent, the ctl client and the interactive shell.
#pragma once

#include <string>
#include <vector>

#include "base/log.hpp"

namespace tn::vnet {

struct VnetConfig;

int run_vnet(const std::string& config, const log::Logger& log);
// The same for a config built from flags (`tn-vnet serve|use`): SIGHUP has no file to re-read.
int run_vnet(VnetConfig cfg, const log::Logger& log);
// --check-config: loads and validates the file (throws on a problem).
void run_check(const std::string& config);
// Sends one command to the running vnet (socket from --socket, else the config's name, else the only
// one in the state directory) and prints its reply; returns the command's exit code.
int run_ctl(const std::string& config, const std::string& socket, const std::vector<std::string>& words);
// The same grammar interactively, line by line, against the running vnet.
int run_shell(const std::string& config, const std::string& socket);

}  // namespace tn::vnet
