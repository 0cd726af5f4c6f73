// posix_spawn of the child (no fork of our address space, exec errors reported) and line splitting.
#include "child.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <cstring>

#include "base/error.hpp"

extern char** environ;

namespace tn::watch {

namespace {
struct Pipe {
    UniqueFd r, w;
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw Error(ExitCode::io, std::string("pipe: ") + std::strerror(errno));
        r.reset(fds[0]);
        w.reset(fds[1]);
        // Only our end is non-blocking: the child keeps ordinary blocking writes.
        ::fcntl(r.get(), F_SETFL, ::fcntl(r.get(), F_GETFL) | O_NONBLOCK);
    }
};

struct SpawnAttr {
    posix_spawnattr_t a;
    SpawnAttr() { posix_spawnattr_init(&a); }
    ~SpawnAttr() { posix_spawnattr_destroy(&a); }
    SpawnAttr(const SpawnAttr&) = delete;
    SpawnAttr& operator=(const SpawnAttr&) = delete;
};

struct FileActions {
    posix_spawn_file_actions_t f;
    FileActions() { posix_spawn_file_actions_init(&f); }
    ~FileActions() { posix_spawn_file_actions_destroy(&f); }
    FileActions(const FileActions&) = delete;
    FileActions& operator=(const FileActions&) = delete;
};
}  // namespace

Spawned spawn_child(const std::vector<std::string>& argv) {
    if (argv.empty()) throw Error(ExitCode::usage, "no command to run");
    Pipe out, err;
    SpawnAttr attr;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    // We block signals for signalfd and ignore SIGPIPE; the child must start with neither.
    posix_spawnattr_setsigmask(&attr.a, &none);
    posix_spawnattr_setsigdefault(&attr.a, &all);
    // A new session, hence also a new process group led by the child: the terminal of `tn-watch run`
    // is not its controlling terminal, so a child that opens /dev/tty (ssh asking for a password) gets
    // an error instead of being stopped by SIGTTIN and hanging the supervisor, and a closed terminal's
    // SIGHUP does not reach it.
    posix_spawnattr_setflags(&attr.a, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    FileActions fa;
    posix_spawn_file_actions_addopen(&fa.f, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa.f, out.w.get(), 1);
    posix_spawn_file_actions_adddup2(&fa.f, err.w.get(), 2);

    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    int rc = ::posix_spawnp(&pid, args[0], &fa.f, &attr.a, args.data(), environ);
    if (rc != 0) throw Error(ExitCode::unavailable, "cannot run " + argv[0] + ": " + std::strerror(rc));
    return Spawned{pid, std::move(out.r), std::move(err.r)};
}

void LineSplitter::feed(std::string_view bytes, const Emit& emit) {
    while (!bytes.empty()) {
        auto nl = bytes.find('\n');
        std::size_t take = nl == std::string_view::npos ? bytes.size() : nl;
        std::size_t room = max_line - buf_.size();
        if (take > room) {
            buf_.append(bytes.substr(0, room));
            emit(buf_);
            buf_.clear();
            bytes.remove_prefix(room);
            continue;
        }
        buf_.append(bytes.substr(0, take));
        if (nl == std::string_view::npos) return;
        if (!buf_.empty() && buf_.back() == '\r') buf_.pop_back();
        emit(buf_);
        buf_.clear();
        bytes.remove_prefix(take + 1);
    }
}

void LineSplitter::flush(const Emit& emit) {
    if (!buf_.empty()) emit(buf_);
    buf_.clear();
}

}  // namespace tn::watch
