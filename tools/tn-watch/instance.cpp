// State-dir files of one name: lock probing that never races a starting supervisor, and the status file.
#include "instance.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/error.hpp"
#include "base/runtime_dir.hpp"
#include "base/strings.hpp"

namespace tn::watch {

namespace {
constexpr std::size_t max_name = 64;
// A status file is a few hundred bytes; the cap only guards against reading something else.
constexpr std::size_t max_status_bytes = 256u << 10;
// How long a starting supervisor keeps retrying while only probes hold the lock.
constexpr int lock_retries = 2000;

std::string escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string unescape(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) {
            ++i;
            out += s[i] == 'n' ? '\n' : s[i];
        } else {
            out += s[i];
        }
    }
    return out;
}

bool flock_nb(int fd, int op) {
    for (;;) {
        if (::flock(fd, op | LOCK_NB) == 0) return true;
        if (errno == EINTR) continue;
        if (errno == EWOULDBLOCK) return false;
        throw Error(ExitCode::io, std::string("flock: ") + std::strerror(errno));
    }
}
}  // namespace

void check_name(const std::string& name) {
    if (name.empty() || name.size() > max_name)
        throw ParseError("name '" + name + "' must be 1 to 64 characters long");
    if (name[0] == '.') throw ParseError("name '" + name + "' must not start with '.'");
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-';
        if (!ok) throw ParseError("name '" + name + "' may hold only letters, digits, '.', '_' and '-'");
    }
}

Paths::Paths(const std::filesystem::path& state_dir, const std::string& name) : Paths(state_dir, state_dir, name) {}

Paths::Paths(const std::filesystem::path& state_dir, const std::filesystem::path& lock_dir, const std::string& name)
    : dir(state_dir), lock(lock_dir / (name + ".lock")), log(state_dir / (name + ".log")),
      status(state_dir / (name + ".status")) {}

Paths Paths::of(const std::string& name, bool create) {
    if (create) return Paths(ensure_persistent_dir(), ensure_state_dir(), name);
    auto d = state_dirs();
    return Paths(d.persistent, d.runtime, name);
}

std::optional<InstanceLock> InstanceLock::acquire(const std::filesystem::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) throw Error(ExitCode::io, "cannot open lock file " + path.string() + ": " + std::strerror(errno));
    for (int i = 0; i < lock_retries; ++i) {
        if (flock_nb(fd.get(), LOCK_EX)) return InstanceLock(std::move(fd));
        // Held. If a shared lock is possible, only probes hold it: they let go within microseconds.
        if (!flock_nb(fd.get(), LOCK_SH)) return std::nullopt;  // an exclusive holder: a live supervisor
        ::flock(fd.get(), LOCK_UN);
        std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    // Nobody holds it exclusively, yet we never got it: saying "already running" here would let
    // `ensure` succeed with no supervisor at all, so it is an error the caller sees.
    throw Error(ExitCode::temp_fail, "cannot take " + path.string() + ": it stayed busy with probes; try again");
}

bool is_running(const std::filesystem::path& lock_path) {
    UniqueFd fd(::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return false;
    if (flock_nb(fd.get(), LOCK_SH)) return false;  // closing the fd drops the shared lock
    return true;
}

std::string Status::to_json() const {
    std::ostringstream o;
    o << "{\"name\":" << json_quote(name) << ",\"running\":" << (pid > 0 ? "true" : "false")
      << ",\"pid\":" << (pid > 0 ? std::to_string(pid) : "null")
      << ",\"child_pid\":" << (child_pid > 0 ? std::to_string(child_pid) : "null") << ",\"state\":" << json_quote(state)
      << ",\"restarts\":" << restarts << ",\"last_exit\":";
    if (last_exit.empty()) o << "null";
    else o << "{\"text\":" << json_quote(last_exit) << ",\"code\":" << last_exit_code << "}";
    o << ",\"started_ms\":" << started_ms << ",\"child_started_ms\":" << (child_started_ms > 0 ? std::to_string(child_started_ms) : "null")
      << ",\"command\":[";
    for (std::size_t i = 0; i < command.size(); ++i) o << (i ? "," : "") << json_quote(command[i]);
    o << "]}";
    return o.str();
}

void write_status(const Paths& p, const Status& s) {
    std::ostringstream o;
    o << "tn-watch-status 1\n"
      << "name=" << escape(s.name) << "\npid=" << s.pid << "\nchild_pid=" << s.child_pid << "\nrestarts=" << s.restarts
      << "\nstate=" << s.state << "\nlast_exit=" << escape(s.last_exit) << "\nlast_exit_code=" << s.last_exit_code
      << "\nstarted_ms=" << s.started_ms << "\nchild_started_ms=" << s.child_started_ms << "\ngrace_ms=" << s.grace_ms
      << "\n";
    for (const auto& a : s.command) o << "arg=" << escape(a) << "\n";
    auto tmp = p.status;
    tmp += ".tmp";
    {
        std::ofstream f(tmp, std::ios::trunc);
        f << o.str();
        if (!f) throw Error(ExitCode::io, "cannot write " + tmp.string());
    }
    std::error_code ec;
    std::filesystem::rename(tmp, p.status, ec);
    if (ec) throw Error(ExitCode::io, "cannot rename " + tmp.string() + ": " + ec.message());
}

std::optional<Status> read_status(const std::filesystem::path& file) {
    std::ifstream f(file, std::ios::binary);
    if (!f) return std::nullopt;
    std::string text(max_status_bytes + 1, '\0');
    f.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(f.gcount()));
    auto lines = split(text, '\n');
    if (text.size() > max_status_bytes || lines.empty() || lines[0] != "tn-watch-status 1")
        throw Error(ExitCode::data, file.string() + " is not a tn-watch status file");
    Status s;
    auto num = [&](std::string_view v) { return parse_int(v, -1, 1LL << 62).value_or(0); };
    for (std::size_t i = 1; i < lines.size(); ++i) {
        auto eq = lines[i].find('=');
        if (eq == std::string::npos) continue;
        std::string_view k(lines[i].data(), eq), v(lines[i].data() + eq + 1, lines[i].size() - eq - 1);
        if (k == "name") s.name = unescape(v);
        else if (k == "pid") s.pid = static_cast<long>(num(v));
        else if (k == "child_pid") s.child_pid = static_cast<long>(num(v));
        else if (k == "restarts") s.restarts = static_cast<long>(num(v));
        else if (k == "state") s.state = std::string(v);
        else if (k == "last_exit") s.last_exit = unescape(v);
        else if (k == "last_exit_code") s.last_exit_code = static_cast<long>(num(v));
        else if (k == "started_ms") s.started_ms = num(v);
        else if (k == "child_started_ms") s.child_started_ms = num(v);
        else if (k == "grace_ms") s.grace_ms = num(v);
        else if (k == "arg") s.command.push_back(unescape(v));
    }
    return s;
}

std::vector<std::string> list_names(const std::filesystem::path& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        auto fn = e.path().filename().string();
        const std::string suffix = ".status";
        if (fn.size() > suffix.size() && fn.compare(fn.size() - suffix.size(), suffix.size(), suffix) == 0)
            names.push_back(fn.substr(0, fn.size() - suffix.size()));
    }
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace tn::watch
