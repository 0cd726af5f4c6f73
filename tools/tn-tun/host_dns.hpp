// The client's use of the DNS servers the server pushes (`[client] apply_dns`, tn-tun(1) "DNS"):
// through resolvectl when systemd-resolved runs, else resolvconf when installed, else by writing
// /etc/resolv.conf itself. What it changed is recorded in a 0600 state file before the change
// (for /etc/resolv.conf, its original bytes), undone at teardown and, after a SIGKILL, at the next
// start.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "base/log.hpp"

namespace tn::tuntool {

class HostDns {
public:
    // Undoes what a killed earlier run left (listed in `state_file`).
    HostDns(std::filesystem::path state_file, std::filesystem::path resolv_conf, const log::Logger& log);
    ~HostDns();
    HostDns(const HostDns&) = delete;
    HostDns& operator=(const HostDns&) = delete;

    // Makes `servers` (IPv4 or IPv6 addresses) the host's DNS servers while the tunnel is up (none: undo). Failures are
    // logged; the tunnel works on without them.
    void apply(const std::string& tun, const std::vector<std::string>& servers);
    void clear();
    const std::string& method() const { return method_; }  // "" when nothing is applied

private:
    bool set(const std::string& tun, const std::vector<std::string>& servers);
    void undo(const std::string& record);
    std::filesystem::path file_, resolv_conf_;
    const log::Logger& log_;
    std::string method_;
    std::string tun_;
    std::vector<std::string> servers_;
};

}  // namespace tn::tuntool
