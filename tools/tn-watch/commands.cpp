// start/ensure/stop/status/logs: short-lived clients of a supervisor, which talk through the state dir.
#include "commands.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>

#include "base/error.hpp"
#include "base/pidfd.hpp"
#include "base/proc_cmdline.hpp"
#include "base/runtime_dir.hpp"
#include "base/strings.hpp"
#include "base/unique_fd.hpp"
#include "instance.hpp"
#include "runner.hpp"

namespace tn::watch {

namespace {

long long now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The ready line is short; anything longer is cut (the reader of a pipe has a cap too).
constexpr std::size_t max_ready = 4096;

std::string read_all(int fd) {
    std::string s;
    char buf[512];
    while (s.size() < max_ready) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        s.append(buf, static_cast<std::size_t>(n));
    }
    return s;
}

// The pid in a status file is trusted only if that process is a tn-watch: pids get reused.
bool is_tn_watch(long pid) {
    auto argv = read_cmdline(static_cast<pid_t>(pid));
    return !argv.empty() && argv[0].find("tn-watch") != std::string::npos;
}

}  // namespace

int start_detached(const RunPlan& plan, bool ensure, const log::Logger& log) {
    Paths paths = Paths::of(plan.name, true);
    if (is_running(paths.lock)) {
        if (ensure) {
            log.debug(plan.name, " is already running");
            return 0;
        }
        throw Error(ExitCode::temp_fail, plan.name + " is already running");
    }
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw Error(ExitCode::io, std::string("pipe: ") + std::strerror(errno));
    UniqueFd rd(fds[0]), wr(fds[1]);
    std::cout.flush();
    std::fflush(nullptr);  // a forked copy of unflushed output would be printed twice
    pid_t first = ::fork();
    if (first < 0) throw Error(ExitCode::io, std::string("fork: ") + std::strerror(errno));
    if (first == 0) {
        rd.reset();
        ::setsid();  // no controlling terminal: a closed shell's SIGHUP never reaches us
        pid_t second = ::fork();
        if (second != 0) ::_exit(second < 0 ? 1 : 0);
        // The supervisor proper: reparented to init (or a subreaper), reporting through `wr`.
        // Until the log file takes over fds 1 and 2, nothing may reach the caller's terminal: 19 of 20
        // racing `ensure`s lose, and they must lose silently (the ready pipe carries what matters).
        int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull >= 0) {
            for (int fd = 0; fd <= 2; ++fd) ::dup2(devnull, fd);
            if (devnull > 2) ::close(devnull);  // cron may start us with stdin closed: devnull is then fd 0
        }
        Ready ready(wr.release());
        int code = 0;
        try {
            code = supervise(plan, true, ready, log);
        } catch (const Error& e) {
            ready.fail(to_int(e.code()), e.what());
            log.error(e.what());
            code = to_int(e.code());
        } catch (const std::exception& e) {
            ready.fail(70, e.what());
            log.error("internal error: ", e.what());
            code = 70;
        }
        std::fflush(nullptr);
        ::_exit(code);  // never return into the parent's main: no double flush, no second report
    }
    wr.reset();
    int st = 0;
    while (::waitpid(first, &st, 0) < 0 && errno == EINTR) {
    }
    std::string msg = read_all(rd.get());
    if (msg.rfind("ok ", 0) == 0) {
        log.info("started ", plan.name, " (supervisor pid ", trim(msg.substr(3)), ", log ", paths.log.string(), ")");
        return 0;
    }
    if (msg.rfind("busy", 0) == 0) {
        if (ensure) return 0;
        throw Error(ExitCode::temp_fail, plan.name + " is already running");
    }
    if (msg.rfind("err ", 0) == 0) {
        auto sp = msg.find(' ', 4);
        int code = static_cast<int>(parse_int(msg.substr(4, sp - 4), 1, 255).value_or(70));
        throw Error(static_cast<ExitCode>(code), std::string(trim(msg.substr(sp + 1))));
    }
    throw Error(ExitCode::io, "the supervisor of " + plan.name + " ended during start-up; see " + paths.log.string());
}

int stop(const std::string& name, double timeout_s, const log::Logger& log) {
    check_name(name);
    Paths paths = Paths::of(name, false);
    if (!is_running(paths.lock)) {
        log.info(name, " is not running");
        return 0;
    }
    auto st = read_status(paths.status);
    // The pidfd pins the supervisor (opened before its cmdline is checked, so the check is about the
    // process signalled), and ends the wait only once that process has ended. Its cmdline is no such
    // proof: it reads empty while the process is still letting go of what it holds.
    UniqueFd pidfd(st && st->pid > 0 ? pidfd_open(static_cast<pid_t>(st->pid)) : -1);
    if (!pidfd || !is_tn_watch(st->pid))
        throw Error(ExitCode::data, "cannot find the supervisor of " + name + " in " + paths.status.string());
    if (pidfd_signal(pidfd.get(), SIGTERM) != 0 && errno != ESRCH)
        throw Error(ExitCode::no_perm, "cannot signal supervisor " + std::to_string(st->pid) + ": " + std::strerror(errno));
    double limit = timeout_s >= 0 ? timeout_s : static_cast<double>(st->grace_ms) / 1000.0 + 5.0;
    // `stop` returns once the supervisor has ended (a zombie waiting for init has). Its lock went
    // before: the kernel closes a process's descriptors before it reports the end.
    if (!wait_exit(pidfd.get(), static_cast<int>(std::min(limit * 1000, 2e9))))
        throw Error(ExitCode::temp_fail, name + " did not stop within " + std::to_string(static_cast<int>(limit)) + " s");
    log.info("stopped ", name);
    return 0;
}

namespace {
std::string human_uptime(long long ms) {
    long long s = ms / 1000;
    char b[64];
    if (s >= 86400) std::snprintf(b, sizeof b, "%lldd%lldh", s / 86400, (s % 86400) / 3600);
    else if (s >= 3600) std::snprintf(b, sizeof b, "%lldh%lldm", s / 3600, (s % 3600) / 60);
    else if (s >= 60) std::snprintf(b, sizeof b, "%lldm%llds", s / 60, s % 60);
    else std::snprintf(b, sizeof b, "%llds", s);
    return b;
}

std::string json_of(const Status& s, long long now) {
    std::string j = s.to_json();
    j.pop_back();  // add the uptimes, which depend on when we ask
    j += ",\"uptime_s\":" + (s.pid > 0 ? std::to_string((now - s.started_ms) / 1000) : std::string("null"));
    j += ",\"child_uptime_s\":" +
         (s.child_pid > 0 ? std::to_string((now - s.child_started_ms) / 1000) : std::string("null")) + "}";
    return j;
}
}  // namespace

int status(const std::optional<std::string>& name, bool json, std::ostream& out) {
    auto dirs = state_dirs();
    auto dir = dirs.persistent;
    std::vector<std::string> names;
    if (name) {
        check_name(*name);
        names.push_back(*name);
    } else {
        names = list_names(dir);
    }
    std::vector<Status> rows;
    for (const auto& n : names) {
        Paths p(dir, dirs.runtime, n);
        // The lock first, then the file: a supervisor writes its last status before it lets go of the lock,
        // so a reader that finds the lock free also finds that last status (the other order could pair an
        // older status with "not running").
        bool running = is_running(p.lock);
        auto st = read_status(p.status);
        if (!st) {
            if (name) throw Error(ExitCode::check_failed, "no supervisor named " + n + " (nothing in " + dir.string() + ")");
            continue;
        }
        if (!running) {  // a supervisor that died without writing its end still shows stopped
            st->pid = 0;
            st->child_pid = 0;
            st->state = "stopped";
        }
        rows.push_back(*st);
    }
    long long now = now_ms();
    if (json) {
        if (name) {
            out << json_of(rows[0], now) << "\n";
        } else {
            out << "[";
            for (std::size_t i = 0; i < rows.size(); ++i) out << (i ? "," : "") << json_of(rows[i], now);
            out << "]\n";
        }
    } else {
        char line[512];
        std::snprintf(line, sizeof line, "%-20s %-9s %8s %8s %8s %-22s %s\n", "NAME", "STATE", "PID", "CHILD",
                      "RESTARTS", "LAST EXIT", "UPTIME");
        out << line;
        for (const auto& s : rows) {
            std::snprintf(line, sizeof line, "%-20s %-9s %8s %8s %8ld %-22s %s\n", s.name.c_str(), s.state.c_str(),
                          s.pid > 0 ? std::to_string(s.pid).c_str() : "-",
                          s.child_pid > 0 ? std::to_string(s.child_pid).c_str() : "-", s.restarts,
                          s.last_exit.empty() ? "-" : s.last_exit.c_str(),
                          s.pid > 0 ? human_uptime(now - s.started_ms).c_str() : "-");
            out << line;
        }
    }
    out.flush();
    if (name) return rows[0].pid > 0 ? 0 : 1;
    return 0;
}

namespace {
// Copies fd from its current offset to EOF onto stdout; false when stdout is gone.
bool copy_to_end(int fd, std::ostream& out) {
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.write(buf, n);
    }
    out.flush();
    return static_cast<bool>(out);
}

bool same_file(int fd, const std::filesystem::path& p) {
    struct stat a {}, b {};
    return ::fstat(fd, &a) == 0 && ::stat(p.c_str(), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}
}  // namespace

int logs(const std::string& name, bool follow, std::ostream& out) {
    check_name(name);
    Paths p = Paths::of(name, false);
    std::error_code ec;
    if (!std::filesystem::exists(p.log, ec) && !std::filesystem::exists(p.status, ec))
        throw Error(ExitCode::check_failed, "no log for " + name + " in " + p.dir.string());
    for (int i = 100; i >= 1; --i) {  // rotated files, oldest first
        auto old = p.log;
        old += "." + std::to_string(i);
        UniqueFd fd(::open(old.c_str(), O_RDONLY | O_CLOEXEC));
        if (fd && !copy_to_end(fd.get(), out)) return 0;
    }
    UniqueFd cur(::open(p.log.c_str(), O_RDONLY | O_CLOEXEC));
    if (cur && !copy_to_end(cur.get(), out)) return 0;
    if (!follow) return 0;

    // Follow with inotify on the directory: no polling, and a rotation shows up as a new N.log.
    UniqueFd in(::inotify_init1(IN_CLOEXEC));
    if (!in || ::inotify_add_watch(in.get(), p.dir.c_str(), IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0)
        throw Error(ExitCode::io, std::string("inotify: ") + std::strerror(errno));
    auto fname = p.log.filename().string();
    alignas(inotify_event) char buf[8192];
    for (;;) {
        ssize_t n = ::read(in.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw Error(ExitCode::io, std::string("inotify read: ") + std::strerror(errno));
        bool ours = false;
        for (char* q = buf; q < buf + n;) {
            auto* ev = reinterpret_cast<inotify_event*>(q);
            if (ev->len > 0 && fname == ev->name) ours = true;
            q += sizeof(inotify_event) + ev->len;
        }
        if (!ours) continue;
        if (cur && !copy_to_end(cur.get(), out)) return 0;
        if (!cur || !same_file(cur.get(), p.log)) {  // rotated (or created): the rest is in the new file
            cur.reset(::open(p.log.c_str(), O_RDONLY | O_CLOEXEC));
            if (cur && !copy_to_end(cur.get(), out)) return 0;
        }
    }
}

}  // namespace tn::watch
