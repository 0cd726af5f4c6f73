// One supervised name in the state dir: its paths, its flock, and the status file the supervisor keeps.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/unique_fd.hpp"

namespace tn::watch {

// Names become file names: [A-Za-z0-9._-], 1..64 chars, not starting with '.'. Throws ParseError.
void check_name(const std::string& name);

// dir holds the log and status (the persistent state dir), the lock lives with the runtime files; both
// are the same directory except for root (SPEC §6: /var/lib/tn and /run/tn).
struct Paths {
    std::filesystem::path dir, lock, log, status;
    Paths(const std::filesystem::path& state_dir, const std::string& name);
    Paths(const std::filesystem::path& state_dir, const std::filesystem::path& lock_dir, const std::string& name);
    // The dirs of this user (created 0700 with `create`).
    static Paths of(const std::string& name, bool create);
};

// The supervisor's exclusive flock on N.lock. Probes (status, stop, ensure) take a shared lock for a
// moment only, so a supervisor starting at that instant retries instead of mistaking a probe for a
// running twin; an exclusive holder is always a real supervisor, so the answer is never wrong.
class InstanceLock {
public:
    // nullopt when another supervisor holds it. Throws tn::Error(io) when the file cannot be opened,
    // tn::Error(temp_fail) when probes kept it busy for a whole second.
    static std::optional<InstanceLock> acquire(const std::filesystem::path& path);
    int fd() const { return fd_.get(); }

private:
    explicit InstanceLock(UniqueFd fd) : fd_(std::move(fd)) {}
    UniqueFd fd_;
};

// True when a supervisor holds the lock of `path` right now. A missing lock file means no.
bool is_running(const std::filesystem::path& lock_path);

// What `status` prints, as the supervisor last wrote it (N.status: key=value lines, replaced atomically).
struct Status {
    std::string name;
    long pid = 0;        // the supervisor
    long child_pid = 0;  // 0 when no child runs
    long restarts = 0;
    std::string state;
    std::string last_exit;  // "exit 1", "signal 9 (SIGKILL)", "" when none yet
    long last_exit_code = -1;
    long long started_ms = 0;        // wall clock, ms since the epoch
    long long child_started_ms = 0;  // 0 when no child runs
    long long grace_ms = 0;
    std::vector<std::string> command;
    std::string to_json() const;  // one line, newline-free
};

void write_status(const Paths& p, const Status& s);  // atomic: temp file + rename
// Reads a status file; nullopt when missing. Throws tn::Error(data) when it is not ours.
std::optional<Status> read_status(const std::filesystem::path& file);
// Every name with a status file in `dir`, sorted.
std::vector<std::string> list_names(const std::filesystem::path& dir);

}  // namespace tn::watch
