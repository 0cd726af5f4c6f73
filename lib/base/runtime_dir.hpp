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

// $TN_STATE_DIR, else $XDG_RUNTIME_DIR/tn, else ~/.local/state/tn. Pure: does not create it.
std::filesystem::path state_dir_path(const EnvLookup& env = process_env());

// state_dir_path(), created with mode 0700 if missing. Throws tn::Error(io) on failure.
std::filesystem::path ensure_state_dir(const EnvLookup& env = process_env());

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
