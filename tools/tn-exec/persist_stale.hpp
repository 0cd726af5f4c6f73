// Replacing a --persist master that speaks another protocol version (a tn-exec upgrade while its old
// master idles on): it is stopped only when it is provably our own master for that socket; any other
// process is reported, never signalled.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "persist_wire.hpp"

namespace tn::exec {

// What the process serving a socket is, from the connection (SO_PEERCRED) and /proc.
struct MasterIdentity {
    pid_t pid = 0;
    uid_t uid = 0;
    std::optional<pid_t> recorded_pid;  // what SOCKET.pid says, if it exists
    std::vector<std::string> argv;      // /proc/PID/cmdline
};

// The PID a master recorded in SOCKET.pid; nullopt when missing or garbage.
std::optional<pid_t> read_pid_file(const std::filesystem::path& p);

// Why `who` must not be stopped as our master for `sock_path`; empty when it may be: it runs as
// `me`, it is the PID the master recorded beside its socket, and its command line is
// `... __master ... --socket SOCK_PATH ...`.
std::string not_ours_reason(const MasterIdentity& who, const std::filesystem::path& sock_path, uid_t me);

// `conn` is connected to the master at `sock_path`, which answered in an older protocol `theirs`
// (a newer one is never replaced: that would downgrade another tn-exec's master). When it is
// ours: SIGTERM (SIGKILL after 2 s) through a pidfd, so a recycled PID is never hit, and its pid file
// goes; the next connect then starts a master of this version. Otherwise throws tn::Error
// (unavailable) naming the socket, the PID and the reason.
void replace_stale_master(const std::filesystem::path& sock_path, int conn, const wire::VersionMismatch& theirs);

}  // namespace tn::exec
