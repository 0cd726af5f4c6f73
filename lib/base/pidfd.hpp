// A process pinned by a pidfd (Linux 5.3+): a signal or a wait through it reaches that very process,
// never a later one that got its pid after it ended. How a tool stops a process whose pid it read
// from a file or a socket's peer credentials.
#pragma once

#include <sys/types.h>

namespace tn {

// A pidfd for `pid` (wrap it in UniqueFd); -1 with errno ESRCH when no such process runs.
int pidfd_open(pid_t pid);
// 0, or -1 with errno (ESRCH once the process has ended).
int pidfd_signal(int pidfd, int sig);
// Waits up to `ms` (0: only looks) for the process to end; true once it has. A zombie has ended: the
// kernel marks the pidfd readable only after the process let go of everything it held.
bool wait_exit(int pidfd, int ms);

}  // namespace tn
