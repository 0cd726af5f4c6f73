// The spawn seam over Boost.Process 1.74. Boost forks, execs and carries an exec failure back to us over
// its close-on-exec pipe; what it gets wrong for a daemon is repaired here (doc/ARCHITECTURE.md,
// "Spawning programs"), each repair checked by tests/unit/test_spawn.cpp:
// - the child inherits our signal mask and ignored signals: reset in the child;
// - every descriptor of ours without O_CLOEXEC leaks into the child: all but 0-2 closed at exec;
// - bp::start_dir ignores a failed chdir and runs the program in our directory: our own chdir;
// - a child whose exec failed is never reaped: reaped in on_error;
// - argv[0] is always the path Boost executes, not the name given: our argv set in the child;
// - ~bp::child kills a child still running: every child is detached, the caller reaps it.
#include "base/spawn.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/process/args.hpp>
#include <boost/process/child.hpp>
#include <boost/process/env.hpp>
#include <boost/process/environment.hpp>
#include <boost/process/exe.hpp>
#include <boost/process/extend.hpp>
#include <boost/process/posix.hpp>
#include <cerrno>
#include <cstring>
#include <optional>
#include <system_error>

#include "base/error.hpp"

namespace bp = boost::process;

namespace tn::proc {
namespace {

UniqueFd open_null(int flags) {
    UniqueFd fd(::open("/dev/null", flags | O_CLOEXEC));
    if (!fd) throw Error(ExitCode::io, std::string("cannot open /dev/null: ") + std::strerror(errno));
    return fd;
}

struct Pipe {
    UniqueFd r, w;
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw Error(ExitCode::io, std::string("pipe: ") + std::strerror(errno));
        r.reset(fds[0]);
        w.reset(fds[1]);
    }
};

bool is_executable_file(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// execvp's search, done here in the parent: the forked child must not allocate.
std::string find_program(const Command& cmd) {
    const std::string& name = cmd.argv.front();
    if (name.find('/') != std::string::npos) return name;
    for (const auto& dir : cmd.search_first)
        if (is_executable_file(dir + "/" + name)) return dir + "/" + name;
    std::string path;
    if (auto it = cmd.env.find("PATH"); it != cmd.env.end()) path = it->second;
    else if (const char* p = ::getenv("PATH"))
        path = p;
    else
        path = "/usr/bin:/bin";
    for (std::size_t start = 0;;) {
        auto end = path.find(':', start);
        std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
        std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
        if (is_executable_file(candidate)) return candidate;
        if (end == std::string::npos) break;
        start = end + 1;
    }
    throw Error(ExitCode::unavailable, "cannot run " + name + ": " + std::strerror(ENOENT));
}

// Runs in the forked child, before exec: async-signal-safe calls only.
struct ChildSetup {
    char* const* argv;  // the argv as given, argv[0] included
    const char* cwd;    // nullptr: stay
    bool own_session;
    int max_fd;  // fallback bound when close_range is missing (kernel < 5.11)
    const std::pair<int, int>* pass;
    std::size_t n_pass;

    template <class Exec>
    void operator()(Exec& exec) const {
        exec.cmd_line = argv;  // read by the execve that follows the exec-setup handlers
        // Dispositions set to SIG_IGN (SIGPIPE in every tn tool) and the mask (signals blocked for a
        // signalfd or Asio) survive exec; a child must start as if from a shell.
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);  // EINVAL for KILL/STOP: fine
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        for (int fd = 0; fd < 3; ++fd) ::fcntl(fd, F_SETFD, 0);  // a close-on-exec /dev/null that landed on 0-2
        if (own_session) ::setsid();
        if (cwd && ::chdir(cwd) != 0) {
            exec.set_error(std::error_code(errno, std::system_category()), "chdir");
            ::_exit(127);
        }
        // Close-on-exec rather than close: Boost's pipe that reports a failed exec must stay open.
        if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
            for (int fd = 3; fd < max_fd; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        for (std::size_t i = 0; i < n_pass; ++i) {  // dup2 clears close-on-exec on the target
            auto [to, from] = pass[i];
            if (to == from) ::fcntl(to, F_SETFD, 0);
            else
                ::dup2(from, to);
        }
    }
};

// Reaps a child that Boost forked but reports as failed (its exec or our setup failed).
struct ReapOnError {
    template <class Exec>
    void operator()(Exec& exec, const std::error_code&) const {
        if (exec.pid <= 0) return;
        while (::waitpid(exec.pid, nullptr, 0) < 0 && errno == EINTR) {}
    }
};

int open_fd_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 20))
        return 1 << 20;
    return static_cast<int>(rl.rlim_cur);
}

}  // namespace

Child spawn(const Command& cmd) {
    if (cmd.argv.empty()) throw Error(ExitCode::usage, "no command to run");
    std::string exe = cmd.exe.empty() ? find_program(cmd) : cmd.exe;

    Child child;
    UniqueFd in_null, out_null, err_null;
    std::optional<Pipe> out_pipe, err_pipe;
    // An inherited 0, 1 or 2 that we do not have open is /dev/null for the child: its first open()
    // must not become its stdout (and Boost's dup2 of a closed fd fails without stopping the exec).
    auto ours = [](int fd, int flags, UniqueFd& keep) {
        return ::fcntl(fd, F_GETFD) >= 0 ? fd : (keep = open_null(flags)).get();
    };
    int in_fd = ours(STDIN_FILENO, O_RDONLY, in_null), out_fd = ours(STDOUT_FILENO, O_WRONLY, out_null),
        err_fd = ours(STDERR_FILENO, O_WRONLY, err_null);
    if (cmd.in == Input::null) in_fd = (in_null = open_null(O_RDONLY)).get();
    if (cmd.out == Output::null) out_fd = (out_null = open_null(O_WRONLY)).get();
    if (cmd.out == Output::pipe) out_fd = out_pipe.emplace().w.get();
    if (cmd.err == Output::null) err_fd = (err_null = open_null(O_WRONLY)).get();
    if (cmd.err == Output::pipe) err_fd = err_pipe.emplace().w.get();
    if (cmd.err == Output::merge) err_fd = out_fd;

    bp::environment env = boost::this_process::environment();
    for (const auto& [k, v] : cmd.env) env[k] = v;
    std::vector<std::string> args(cmd.argv.begin() + 1, cmd.argv.end());
    std::vector<char*> argv;
    for (const auto& a : cmd.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::error_code ec;
    bp::child c(bp::exe = exe, bp::args = args, env, bp::posix::fd.bind(STDIN_FILENO, in_fd),
                bp::posix::fd.bind(STDOUT_FILENO, out_fd), bp::posix::fd.bind(STDERR_FILENO, err_fd),
                bp::extend::on_exec_setup =
                    ChildSetup{argv.data(), cmd.cwd.empty() ? nullptr : cmd.cwd.c_str(), cmd.own_session,
                               open_fd_limit(), cmd.pass_fds.data(), cmd.pass_fds.size()},
                bp::extend::on_error = ReapOnError{}, ec);
    if (ec || !c.valid())
        throw Error(ExitCode::unavailable,
                    "cannot run " + cmd.argv.front() + (cmd.cwd.empty() ? "" : " in " + cmd.cwd) + ": " + ec.message());
    c.detach();
    child.pid = c.id();
    if (out_pipe) child.out = std::move(out_pipe->r);
    if (err_pipe) child.err = std::move(err_pipe->r);
    return child;
}

int wait_status(pid_t pid) {
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) throw Error(ExitCode::io, "waitpid " + std::to_string(pid) + ": " + std::strerror(errno));
    return st;
}

int shell_code(int st) {
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

}  // namespace tn::proc
