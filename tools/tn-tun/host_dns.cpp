// DNS servers for the tunnel's lifetime, and back exactly as they were.
#include "host_dns.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

#include "base/unique_fd.hpp"
#include "io_tun.hpp"
#include "state_file.hpp"
#include "tun/wire.hpp"

namespace tn::tuntool {
namespace {

bool installed(const char* name) {
    for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"})
        if (::access((std::string(dir) + name).c_str(), X_OK) == 0) return true;
    return false;
}

bool resolved_runs() { return ::access("/run/systemd/resolve/io.systemd.Resolve", F_OK) == 0; }

std::optional<std::string> read_file(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);  // follows a symlink, as every reader of resolv.conf does
    if (!f) return std::nullopt;
    return std::string(std::istreambuf_iterator<char>(f), {});
}

// In place, never by rename: /etc/resolv.conf may be a bind mount (`ip netns exec`) or a symlink
// others rely on, and its owner and mode stay as they were.
bool write_in_place(const std::filesystem::path& p, const std::string& text) {
    UniqueFd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) return false;
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

int quiet(const std::vector<std::string>& argv) {
    std::string out;
    return run_program_output(argv, out);
}

}  // namespace

HostDns::HostDns(std::filesystem::path state_file, std::filesystem::path resolv_conf, const log::Logger& log)
    : file_(std::move(state_file)), resolv_conf_(std::move(resolv_conf)), log_(log) {
    if (auto left = read_small_file(file_)) {
        undo(*left);
        log_.warn("put back the DNS settings left by a tn-tun client that did not stop cleanly");
    }
}

HostDns::~HostDns() {
    try {
        clear();
    } catch (...) {  // a destructor must not throw; the state file tells the next start
    }
}

void HostDns::apply(const std::string& tun, const std::vector<std::string>& servers) {
    if (!method_.empty() && tun == tun_ && servers == servers_) return;
    clear();
    if (servers.empty()) return;
    if (set(tun, servers)) {
        tun_ = tun;
        servers_ = servers;
    }
}

bool HostDns::set(const std::string& tun, const std::vector<std::string>& servers) {
    const std::vector<std::string>& addrs = servers;
    if (resolved_runs()) {
        // The link is the TUN: systemd-resolved forgets it when the device goes, even after a kill.
        std::vector<std::string> argv{"resolvectl", "dns", tun};
        argv.insert(argv.end(), addrs.begin(), addrs.end());
        if (write_private_file(file_, "resolvectl " + tun + "\n") && quiet(argv) == 0 &&
            quiet({"resolvectl", "domain", tun, "~."}) == 0) {
            method_ = "resolvectl";
            return true;
        }
        quiet({"resolvectl", "revert", tun});
        log_.warn("resolvectl could not take the DNS servers; trying the next way");
    }
    std::string conf = "# written by tn-tun client for " + tun + "; put back when it stops\n";
    for (auto& a : addrs) conf += "nameserver " + a + "\n";
    if (installed("resolvconf")) {
        if (!write_private_file(file_, "resolvconf " + tun + "\n")) return false;
        int rc = run_program({"/bin/sh", "-c", "printf '%s' \"$TN_CONF\" | resolvconf -a \"$TN_IF.tn-tun\""},
                             {{"TN_CONF", conf}, {"TN_IF", tun}});
        if (rc == 0) {
            method_ = "resolvconf";
            return true;
        }
        undo("resolvconf " + tun + "\n");
        log_.warn("resolvconf failed (status ", rc, "); writing ", resolv_conf_.string(), " instead");
    }
    auto original = read_file(resolv_conf_);
    std::string record = original ? "resolv.conf present\n" + *original : "resolv.conf absent\n";
    if (!write_private_file(file_, record)) {
        log_.warn("cannot record ", resolv_conf_.string(), " in ", file_.string(), ": ", std::strerror(errno),
                  "; DNS servers not applied");
        return false;
    }
    if (!write_in_place(resolv_conf_, conf)) {
        log_.warn("cannot write ", resolv_conf_.string(), ": ", std::strerror(errno), "; DNS servers not applied");
        undo(record);
        return false;
    }
    method_ = "resolv.conf";
    return true;
}

void HostDns::clear() {
    if (method_.empty()) return;
    if (auto record = read_small_file(file_)) undo(*record);
    method_.clear();
    servers_.clear();
}

// The record's first line says what was done; for resolv.conf the original bytes follow it.
void HostDns::undo(const std::string& record) {
    auto nl = record.find('\n');
    std::istringstream head(record.substr(0, nl));
    std::string how, arg;
    head >> how >> arg;
    bool ok = true;
    if (how == "resolvectl") {
        quiet({"resolvectl", "revert", arg});  // fails when the link went with the TUN: nothing to undo
    } else if (how == "resolvconf") {
        quiet({"resolvconf", "-d", arg + ".tn-tun", "-f"});
    } else if (how == "resolv.conf" && arg == "present") {
        ok = write_in_place(resolv_conf_, nl == std::string::npos ? "" : record.substr(nl + 1));
    } else if (how == "resolv.conf" && arg == "absent") {
        ok = ::unlink(resolv_conf_.c_str()) == 0 || errno == ENOENT;
    }
    if (!ok) {
        log_.warn("cannot put ", resolv_conf_.string(), " back: ", std::strerror(errno), "; its original stays in ",
                  file_.string());
        return;
    }
    std::error_code ec;
    std::filesystem::remove(file_, ec);
}

}  // namespace tn::tuntool
