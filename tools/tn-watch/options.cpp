// Validation of tn-watch options and lookup of shipped policies by name.
#include "options.hpp"

#include <cmath>

#include "base/error.hpp"
#include "base/runtime_dir.hpp"
#include "base/strings.hpp"
#include "instance.hpp"

#ifndef TN_LUA_DIR
#define TN_LUA_DIR "/usr/local/share/tn/lua"
#endif

namespace tn::watch {

namespace {
supervise::Duration seconds(double s, const char* flag) {
    if (!std::isfinite(s) || s < 0 || s > 86400 * 7)
        throw ParseError(std::string(flag) + " must be a number of seconds between 0 and 604800");
    return supervise::Duration(static_cast<long long>(std::llround(s * 1000)));
}
}  // namespace

std::filesystem::path resolve_policy(const std::string& arg) {
    std::error_code ec;
    if (std::filesystem::exists(arg, ec) || arg.find('/') != std::string::npos) return arg;
    std::string file = arg;
    if (file.size() < 4 || file.compare(file.size() - 4, 4, ".lua") != 0) file += ".lua";
    std::vector<std::string> dirs;
    if (auto p = process_env()("TN_LUA_PATH")) dirs = split(*p, ':');
    dirs.emplace_back(TN_LUA_DIR);
    for (const auto& d : dirs) {
        if (d.empty()) continue;
        auto candidate = std::filesystem::path(d) / file;
        if (std::filesystem::exists(candidate, ec)) return candidate;
    }
    return arg;  // the engine reports it as missing, naming what the user typed
}

RunPlan make_plan(const RunOptions& o) {
    RunPlan p;
    if (o.command.empty()) throw ParseError("no command given: tn-watch run [--name N] [--] CMD [ARG...]");
    p.command = o.command;
    p.name = o.name.empty() ? std::filesystem::path(o.command[0]).filename().string() : o.name;
    check_name(p.name);
    for (const auto& s : o.sets) {
        auto eq = s.find('=');
        if (eq == std::string::npos || eq == 0) throw ParseError("--set '" + s + "' must look like KEY=VALUE");
        p.sets[s.substr(0, eq)] = s.substr(eq + 1);
    }
    // Absolute, so a SIGHUP reload reads the same files whatever the directory is by then.
    for (const auto& f : o.policies) {
        std::error_code ec;
        auto abs = std::filesystem::absolute(resolve_policy(f), ec);
        p.policies.push_back(ec ? resolve_policy(f) : abs);
    }
    p.settings.grace = seconds(o.grace, "--grace");
    p.settings.backoff.initial = seconds(o.backoff_initial, "--backoff-initial");
    p.settings.backoff.max = seconds(o.backoff_max, "--backoff-max");
    p.settings.backoff.stable_after = seconds(o.stable_after, "--stable-after");
    if (p.settings.backoff.max < p.settings.backoff.initial)
        throw ParseError("--backoff-max must not be smaller than --backoff-initial");
    if (o.log_size < 4096) throw ParseError("--log-size must be at least 4096 bytes");
    if (o.log_keep < 0 || o.log_keep > 100) throw ParseError("--log-keep must be between 0 and 100");
    p.log_size = static_cast<std::size_t>(o.log_size);
    p.log_keep = o.log_keep;
    if (o.instructions < 1000) throw ParseError("--instruction-limit must be at least 1000");
    p.instructions = o.instructions;
    return p;
}

}  // namespace tn::watch
