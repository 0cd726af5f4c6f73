// Where runtime files live (SPEC §2), the home directory, and single-instance locks.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "base/unique_fd.hpp"

namespace tn {

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_env();

// $HOME, else the passwd entry. Tests point HOME at a temp dir, so HOME must win.
std::filesystem::path home_dir(const EnvLookup& env = process_env());

// One user gets one state dir whatever the environment (cron, login shell, ssh session, systemd unit,
// sudo -u), so a cron line and a ~/.bashrc hook find the same locks (SPEC §6):
//   $TN_STATE_DIR (both kinds), else for root /run/tn (sockets, locks) and /var/lib/tn (logs, status,
//   keys), else ~/.local/state/tn (both), where ~ is $HOME only when the user owns it (sudo -u and su
//   may leave the caller's HOME behind), else the passwd entry. XDG_RUNTIME_DIR plays no part: cron and
//   sudo do not set it.
struct StateDirs {
    std::filesystem::path runtime;     // sockets, locks, pid files: what dies with the process
    std::filesystem::path persistent;  // logs, status files, certificates: what must survive a reboot
};
// What the rule reads, gathered so the rule itself is pure and tested.
struct StateDirInputs {
    std::optional<std::string> tn_state_dir;
    bool root = false;
    std::optional<std::filesystem::path> home_env;  // $HOME
    bool home_env_owned = false;                    // $HOME exists and belongs to the effective uid
    std::optional<std::filesystem::path> passwd_home;
};
StateDirs resolve_state_dirs(const StateDirInputs& in);  // throws tn::Error(config) with no home at all
StateDirInputs gather_state_dir_inputs(const EnvLookup& env);
StateDirs state_dirs(const EnvLookup& env = process_env());

// The runtime dir (sockets and locks): state_dirs().runtime. Does not create it.
std::filesystem::path state_dir_path(const EnvLookup& env = process_env());
// state_dir_path(), created with mode 0700 if missing. Throws tn::Error(io) on failure.
std::filesystem::path ensure_state_dir(const EnvLookup& env = process_env());
// The persistent dir (logs, status): state_dirs().persistent; the ensure_ form creates it 0700.
std::filesystem::path persistent_dir_path(const EnvLookup& env = process_env());
std::filesystem::path ensure_persistent_dir(const EnvLookup& env = process_env());

// An flock(2) held for the lifetime of the object. The kernel drops it when the process dies, so a
// crashed instance never leaves a stale lock behind (unlike pid files).
class FileLock {
public:
    // nullopt when another process holds it; throws tn::Error(io) when the file cannot be opened.
    static std::optional<FileLock> try_acquire(const std::filesystem::path& path);
    const std::filesystem::path& path() const { return path_; }
    int fd() const { return fd_.get(); }

private:
    FileLock(std::filesystem::path p, UniqueFd fd) : path_(std::move(p)), fd_(std::move(fd)) {}
    std::filesystem::path path_;
    UniqueFd fd_;
};

}  // namespace tn
