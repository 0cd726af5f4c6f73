// Starting another program: the one place tn forks and execs, over Boost.Process (doc/ARCHITECTURE.md,
// "Spawning programs", lists the Boost 1.74 defects this seam works around). Boost.Process stays in
// spawn.cpp: it costs ~11 s to compile, and no caller needs its types.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "base/unique_fd.hpp"

namespace tn::proc {

enum class Input { inherit, null };
// `merge` (stderr only): stderr goes wherever stdout goes, into the same pipe when stdout is `pipe`.
enum class Output { inherit, null, pipe, merge };

struct Command {
    // argv[0] without a '/' is looked up in `search_first`, then in PATH (the child's, if `env` sets it).
    std::vector<std::string> argv{};
    std::vector<std::string> search_first{};
    std::string exe{};  // the file to execute instead (argv[0] is still passed as given); e.g. /proc/self/exe
    std::map<std::string, std::string> env{};  // set in the child's environment on top of ours
    std::string cwd{};                         // empty: ours
    bool own_session = false;                  // setsid(): the child leads a new session and process group
    Input in = Input::inherit;
    Output out = Output::inherit, err = Output::inherit;
    // More descriptors for the child: {its fd (3 or more), our fd}. Our fd may be close-on-exec.
    std::vector<std::pair<int, int>> pass_fds{};
};

struct Child {
    pid_t pid = 0;      // also the process group id with own_session
    UniqueFd out, err;  // read ends of the pipes asked for: blocking, close-on-exec
};

// Starts the command and returns at once; the caller reaps it (waitpid, or wait_status below), which
// is why Boost.Process never handles SIGCHLD here. The child starts with every signal at its default
// and none blocked, and with no descriptor of ours but 0, 1, 2 and pass_fds.
// Throws tn::Error(unavailable) "cannot run PROGRAM: REASON" when it cannot be started (not found, not
// executable, no such cwd); no child is left behind then.
Child spawn(const Command& cmd);

// Waits for pid (through EINTR) and returns its wait status (WIFEXITED & co. apply).
int wait_status(pid_t pid);

// A wait status as a shell reports it: the exit code, or 128+N for a death by signal N.
int shell_code(int wait_status);

}  // namespace tn::proc
