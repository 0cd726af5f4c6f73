// Validation of tn-watch options and lookup of shipped policies by name.
#include "options.hpp"

#include <sys/stat.h>
#include <unistd.h>

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

std::vector<std::filesystem::path> policy_dirs(const std::optional<std::string>& lua_path,
                                               const std::filesystem::path& exe) {
    std::vector<std::filesystem::path> dirs;
    if (lua_path)
        for (const auto& d : split(*lua_path, ':'))
            if (!d.empty()) dirs.emplace_back(d);
    dirs.emplace_back(TN_LUA_DIR);
    // A binary run from a build tree (build/tools/tn-watch/tn-watch): the source tree's lua/ above it.
    // Only a directory that is the shipped policies' own (it has their meson.build) counts, so a stray
    // `lua` folder above an installed binary is never searched; and only one that no other user can
    // write to, so a binary copied under /tmp cannot be fed another user's policy.
    std::error_code ec;
    auto dir = exe.parent_path();
    for (int up = 0; up < 4 && !dir.empty() && dir != dir.root_path(); ++up, dir = dir.parent_path()) {
        if (!std::filesystem::exists(dir / "lua" / "meson.build", ec)) continue;
        struct stat sb {};
        if (::stat((dir / "lua").c_str(), &sb) == 0 && (sb.st_uid == 0 || sb.st_uid == ::geteuid()) &&
            (sb.st_mode & 022) == 0)
            dirs.push_back(dir / "lua");
        break;
    }
    return dirs;
}

std::filesystem::path resolve_policy(const std::string& arg) {
    std::error_code ec;
    if (std::filesystem::exists(arg, ec) || arg.find('/') != std::string::npos) return arg;
    std::string file = arg;
    if (file.size() < 4 || file.compare(file.size() - 4, 4, ".lua") != 0) file += ".lua";
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    auto dirs = policy_dirs(process_env()("TN_LUA_PATH"), ec ? std::filesystem::path() : exe);
    std::string tried;
    for (const auto& d : dirs) {
        auto candidate = d / file;
        if (std::filesystem::exists(candidate, ec)) return candidate;
        tried += (tried.empty() ? "" : ", ") + d.string();
    }
    throw Error(ExitCode::config, "policy '" + arg + "' not found: not a file here, and no " + file + " in " + tried +
                                      " (give a path, or set TN_LUA_PATH)");
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
