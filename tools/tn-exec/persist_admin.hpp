// `tn-exec persist list|stop`: the --persist masters of this user, as `ssh -O check|exit` shows and
// stops ControlMasters. A master is found through its SOCKET.pid file in the state dir and counts
// only when that PID is alive, runs as us and is `tn-exec __master --socket SOCKET` (persist_stale).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "base/log.hpp"

namespace tn::exec {

struct MasterInfo {
    pid_t pid = 0;
    std::string target;  // [user@]host[:port], as `persist stop` and the other subcommands accept it
    std::string label;   // the host as the user typed it
    std::filesystem::path socket;
};

// The target a master's command line (`... __master [opts] HOST`) works on, -l/-p applied.
std::optional<MasterInfo> master_from_cmdline(const std::vector<std::string>& argv);

// Live masters of this user in the state dir, by socket name.
std::vector<MasterInfo> list_masters();

// Text: "PID TARGET SOCKET" lines. JSON: one document {"masters":[{"pid","target","socket"}...]}.
std::string format_masters(const std::vector<MasterInfo>& masters, bool json);

// Does `which` (a target as listed or typed, a PID, or a socket path) name this master?
bool master_matches(const MasterInfo& m, const std::string& which);

// SIGTERM through a pidfd (SIGKILL after 2 s) once the master is proven ours; its pid file goes.
// Throws tn::Error(unavailable) naming the reason when it is not ours.
void stop_master(const MasterInfo& m);

// The subcommands: list prints the masters (exit 1 when `which` names none); stop ends the named
// ones (exit 1 when none matched; usage error without a name or --all).
int persist_list_main(const std::vector<std::string>& which, bool json, std::ostream& out);
int persist_stop_main(const std::vector<std::string>& which, bool all, const log::Logger& log);

}  // namespace tn::exec
