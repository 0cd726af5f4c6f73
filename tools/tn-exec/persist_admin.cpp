// persist list|stop (persist_admin.hpp).
#include "persist_admin.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ostream>

#include "base/error.hpp"
#include "base/net_addr.hpp"
#include "base/pidfd.hpp"
#include "base/proc_cmdline.hpp"
#include "base/runtime_dir.hpp"
#include "base/strings.hpp"
#include "base/unique_fd.hpp"
#include "persist_stale.hpp"

namespace fs = std::filesystem;

namespace tn::exec {

namespace {

std::string format_target(const SshTarget& t) {
    bool v6 = t.host.find(':') != std::string::npos;
    std::string out = t.user.empty() ? "" : t.user + "@";
    out += v6 && t.port ? "[" + t.host + "]" : t.host;
    if (t.port) out += ":" + std::to_string(*t.port);
    return out;
}

// The identity checks of a stale-master replacement, without a connection: uid from /proc.
std::string not_ours(const MasterInfo& m) {
    struct stat st{};
    if (::stat(("/proc/" + std::to_string(m.pid)).c_str(), &st) != 0) return "it is gone";
    MasterIdentity who{m.pid, st.st_uid, read_pid_file(m.socket.string() + ".pid"), read_cmdline(m.pid)};
    return not_ours_reason(who, m.socket, ::geteuid());
}

}  // namespace

std::optional<MasterInfo> master_from_cmdline(const std::vector<std::string>& argv) {
    auto at = std::find(argv.begin(), argv.end(), "__master");
    if (at == argv.end() || argv.size() < 2) return std::nullopt;
    MasterInfo m;
    m.label = argv.back();
    std::optional<std::uint16_t> port;
    std::string user;
    for (auto it = std::next(at); it != argv.end() && std::next(it) != argv.end(); ++it) {
        const std::string& v = *std::next(it);
        if (*it == "--socket") m.socket = v;
        if (*it == "-l") user = v;
        if (*it == "-p")
            if (auto n = parse_int(v, 1, 65535)) port = static_cast<std::uint16_t>(*n);
    }
    SshTarget t;
    try {
        t = parse_ssh_target(m.label);
    } catch (const ParseError&) {
        return std::nullopt;
    }
    if (!user.empty()) t.user = user;  // -l and -p win, as they did for the master
    if (port) t.port = port;
    m.target = format_target(t);
    return m;
}

std::vector<MasterInfo> list_masters() {
    std::vector<MasterInfo> out;
    std::error_code ec;
    fs::path dir = state_dir_path();
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::string name = it->path().filename().string();
        if (name.rfind("exec-", 0) != 0 || name.size() < 9 || name.substr(name.size() - 9) != ".sock.pid") continue;
        auto pid = read_pid_file(it->path());
        if (!pid) continue;
        auto m = master_from_cmdline(read_cmdline(*pid));
        fs::path sock = it->path().parent_path() / name.substr(0, name.size() - 4);
        if (!m || m->socket != sock) continue;  // a recycled PID, or a stale file
        m->pid = *pid;
        if (!not_ours(*m).empty()) continue;
        out.push_back(*m);
    }
    std::sort(out.begin(), out.end(), [](const MasterInfo& a, const MasterInfo& b) { return a.socket < b.socket; });
    return out;
}

std::string format_masters(const std::vector<MasterInfo>& masters, bool json) {
    std::string out;
    if (json) {
        out = "{\"masters\":[";
        for (std::size_t i = 0; i < masters.size(); ++i) {
            const auto& m = masters[i];
            out += (i ? "," : "") + std::string("{\"pid\":") + std::to_string(m.pid) + ",\"target\":" +
                   json_quote(m.target) + ",\"label\":" + json_quote(m.label) + ",\"socket\":" +
                   json_quote(m.socket.string()) + "}";
        }
        return out + "]}\n";
    }
    for (const auto& m : masters) out += std::to_string(m.pid) + " " + m.target + " " + m.socket.string() + "\n";
    return out;
}

bool master_matches(const MasterInfo& m, const std::string& which) {
    if (which == m.target || which == m.label || which == m.socket.string()) return true;
    auto n = parse_int(which, 1, 1 << 30);
    return n && *n == m.pid;
}

void stop_master(const MasterInfo& m) {
    UniqueFd pidfd(pidfd_open(m.pid));
    if (!pidfd) return;  // already gone
    if (auto why = not_ours(m); !why.empty())
        throw Error(ExitCode::unavailable, "persist: PID " + std::to_string(m.pid) + " is not stopped: " + why);
    if (pidfd_signal(pidfd.get(), SIGTERM) != 0 && errno != ESRCH)
        throw Error(ExitCode::unavailable, "persist: cannot signal PID " + std::to_string(m.pid) + ": " + std::strerror(errno));
    if (!wait_exit(pidfd.get(), 2000)) {
        pidfd_signal(pidfd.get(), SIGKILL);
        wait_exit(pidfd.get(), 2000);
    }
    auto pid_path = m.socket.string() + ".pid";
    if (read_pid_file(pid_path) == m.pid) ::unlink(pid_path.c_str());
}

namespace {
std::vector<MasterInfo> matching(const std::vector<std::string>& which) {
    std::vector<MasterInfo> out;
    for (const auto& m : list_masters())
        if (which.empty() || std::any_of(which.begin(), which.end(), [&](const auto& w) { return master_matches(m, w); }))
            out.push_back(m);
    return out;
}
}  // namespace

int persist_list_main(const std::vector<std::string>& which, bool json, std::ostream& out) {
    auto masters = matching(which);
    out << format_masters(masters, json) << std::flush;
    return !which.empty() && masters.empty() ? to_int(ExitCode::check_failed) : 0;
}

int persist_stop_main(const std::vector<std::string>& which, bool all, const log::Logger& log) {
    if (which.empty() && !all) throw ParseError("persist stop needs TARGET, PID or SOCKET (or --all)");
    if (!which.empty() && all) throw ParseError("persist stop: give TARGETs or --all, not both");
    auto masters = matching(which);
    for (const auto& m : masters) {
        stop_master(m);
        log.info("stopped the master for ", m.target, " (PID ", m.pid, ")");
    }
    if (masters.empty() && !all) {
        log.warn("no running master for ", which.front(), which.size() > 1 ? " (or the others named)" : "");
        return to_int(ExitCode::check_failed);
    }
    return 0;
}

}  // namespace tn::exec
