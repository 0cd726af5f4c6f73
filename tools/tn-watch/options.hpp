// tn-watch's settings from the command line, validated into what the supervisor and clients need.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
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

// A --policy argument: as given if it exists or has a '/'; a bare name (backoff.lua, network) is looked
// up in $TN_LUA_PATH (colon-separated), the installed policy directory, then the source tree's lua/
// above the binary (a build tree). Not found: tn::Error(config) naming every directory searched.
std::filesystem::path resolve_policy(const std::string& arg);
// The directories resolve_policy searches, in order; `exe` is the running binary's path.
std::vector<std::filesystem::path> policy_dirs(const std::optional<std::string>& lua_path,
                                               const std::filesystem::path& exe);

}  // namespace tn::watch
