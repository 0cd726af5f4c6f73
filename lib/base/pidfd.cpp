#include "base/pidfd.hpp"

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace tn {

// Raw syscalls: glibc 2.36's <sys/pidfd.h> lacks extern "C", so its wrappers do not link from C++.
int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

int pidfd_signal(int pidfd, int sig) {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

bool wait_exit(int pidfd, int ms) {
    pollfd p{pidfd, POLLIN, 0};
    for (;;) {
        int rc = ::poll(&p, 1, ms);
        if (rc >= 0 || errno != EINTR) return rc > 0;
    }
}

}  // namespace tn
