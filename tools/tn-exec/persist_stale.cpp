// Stopping another version's --persist master (persist_stale.hpp): identity checks, then a pidfd
// signal under the socket's starter lock, so parallel clients replace it once.
#include "persist_stale.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "base/error.hpp"
#include "base/pidfd.hpp"
#include "base/proc_cmdline.hpp"
#include "base/runtime_dir.hpp"
#include "base/unique_fd.hpp"

namespace tn::exec {

std::optional<pid_t> read_pid_file(const std::filesystem::path& p) {
    std::ifstream f(p);
    long v = 0;
    if (!(f >> v) || v <= 0) return std::nullopt;
    return static_cast<pid_t>(v);
}

std::string not_ours_reason(const MasterIdentity& who, const std::filesystem::path& sock_path, uid_t me) {
    if (who.uid != me) return "it runs as uid " + std::to_string(who.uid);
    if (!who.recorded_pid) return "no pid file " + sock_path.string() + ".pid names it";
    if (*who.recorded_pid != who.pid)
        return "the pid file names " + std::to_string(*who.recorded_pid) + ", not the process on the socket";
    auto m = std::find(who.argv.begin(), who.argv.end(), "__master");
    if (m == who.argv.end()) return "it is not a tn-exec master";
    auto s = std::find(m, who.argv.end(), "--socket");
    if (s == who.argv.end() || std::next(s) == who.argv.end() || *std::next(s) != sock_path.string())
        return "it is a master for another socket";
    return {};
}

void replace_stale_master(const std::filesystem::path& sock_path, int conn, const wire::VersionMismatch& mismatch) {
    const std::string& theirs = mismatch.theirs();
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid <= 0)
        throw Error(ExitCode::unavailable, "persist: " + sock_path.string() + " answers in protocol " + theirs +
                                               " and its process cannot be identified; stop it and retry");
    if (mismatch.newer())
        throw Error(ExitCode::unavailable, "persist: " + sock_path.string() + " is served by a newer tn-exec's master (PID " +
                                               std::to_string(cred.pid) + ", protocol " + theirs +
                                               "); use that tn-exec, or stop it and retry");
    // The pidfd pins this very process: whatever happens to the PID later, only it can be signalled.
    UniqueFd pidfd(pidfd_open(cred.pid));
    if (!pidfd) return;  // it has already ended: the next connect starts a new master
    auto fail = [&](const std::string& why) {
        throw Error(ExitCode::unavailable, "persist: " + sock_path.string() + " is served by PID " +
                                               std::to_string(cred.pid) + " in protocol " + theirs +
                                               ", which is not replaced: " + why + "; stop it and retry");
    };
    // The starter lock: a parallel client that found the same master waits here, then finds it gone.
    std::optional<FileLock> lock;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!(lock = FileLock::try_acquire(sock_path.string() + ".lock"))) {
        if (std::chrono::steady_clock::now() > deadline) throw Error(ExitCode::temp_fail, "persist: lock busy");
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (wait_exit(pidfd.get(), 0)) return;  // replaced by another client meanwhile
    MasterIdentity who{cred.pid, cred.uid, read_pid_file(sock_path.string() + ".pid"), read_cmdline(cred.pid)};
    if (auto why = not_ours_reason(who, sock_path, ::geteuid()); !why.empty()) fail(why);
    if (pidfd_signal(pidfd.get(), SIGTERM) != 0 && errno != ESRCH)
        fail(std::string("cannot signal it: ") + std::strerror(errno));
    if (!wait_exit(pidfd.get(), 2000)) {
        pidfd_signal(pidfd.get(), SIGKILL);
        if (!wait_exit(pidfd.get(), 2000)) fail("it did not end after SIGKILL");
    }
    // SIGTERM leaves its files behind. The socket is unlinked by whoever starts the next master
    // (under this lock); the pid file goes now if it still names the master just stopped.
    auto pid_path = sock_path.string() + ".pid";
    if (read_pid_file(pid_path) == cred.pid) ::unlink(pid_path.c_str());
}

}  // namespace tn::exec
