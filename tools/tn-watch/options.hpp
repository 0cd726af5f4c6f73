// tn-watch's settings from the command line, validated into what the supervisor and clients need.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "supervise/core.hpp"

namespace tn::watch {

struct RunOptions {
    std::string name;                  // default: basename of the command
    std::vector<std::string> policies;  // --policy FILE, in order
    std::vector<std::string> sets;      // --set KEY=VALUE for tn.opt
    std::vector<std::string> command;
    double grace = 1.5;  // seconds, SIGTERM -> SIGKILL: SPEC §2 wants a stop within 2 s
    double backoff_initial = 1, backoff_max = 30, stable_after = 10;
    long long log_size = 1 << 20;      // bytes before rotation
    int log_keep = 3;                  // rotated files kept
    long long instructions = 10'000'000;  // per policy hook call
};

// Everything checked and resolved: ParseError for bad values (the caller maps it to 64), tn::Error(config)
// for a policy file that cannot be found.
struct RunPlan {
    std::string name;
    std::vector<std::string> command;
    std::vector<std::filesystem::path> policies;
    std::map<std::string, std::string> sets;
    supervise::Settings settings;
    std::size_t log_size = 0;
    int log_keep = 0;
    long long instructions = 0;
};
RunPlan make_plan(const RunOptions& o);

// A --policy argument: as given if it exists; a bare name (backoff.lua, network) is also looked up in
// $TN_LUA_PATH (colon-separated) and the installed policy directory.
std::filesystem::path resolve_policy(const std::string& arg);

}  // namespace tn::watch
