// The server as its clients' gateway (`[server] nat`, tn-tun(1) "NAT"): forwarding on, and nftables
// tables of our own (`table ip tn-tun-TUN`, and with subnet6 `table ip6 tn-tun-TUN`) that masquerade
// the tunnel subnets, and the subnets behind peers (site to site), out of one device. Nothing else
// on the host is touched: the tables are added and deleted whole, and net.ipv4.ip_forward and the
// per-device forwarding switches (IPv6's too) are put back to what they were. What was changed is
// recorded in a 0600 state file before the change, so the next start after a SIGKILL undoes it
// exactly.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "base/log.hpp"
#include "tun/wire.hpp"

namespace tn::tuntool {

// The device `nat` names: itself, or for `nat = true` (an empty string here) the default route's.
// Throws tn::Error(config) when there is no such device or no default route, before anything changed.
std::string nat_device(const std::string& configured);

// What NAT masquerades: IPv4 sources, and IPv6 ones (empty: IPv6 is left alone, no table ip6).
struct NatSources {
    std::vector<tun::Route> v4;
    std::vector<tun::Route6> v6;
    bool operator==(const NatSources&) const = default;
};

// One family's forwarding as it was: /proc/sys/net/FAMILY/conf/NAME/forwarding for "all", "default"
// and each device, or empty when "all" was already on (then nothing is changed). Turning forwarding
// on or off as a whole (ip_forward, or IPv6's "all") sets every device's switch and "default" too,
// so putting it back writes "all" first, then each one that differs.
using Forwarding = std::vector<std::pair<std::string, std::string>>;

class HostNat {
public:
    // Undoes what a killed earlier run left (listed in `state_file`), then sets up NAT. Throws
    // tn::Error(io) when nft fails (then nothing stays changed).
    HostNat(std::filesystem::path state_file, const std::string& tun, const std::string& device,
            const NatSources& sources, const log::Logger& log);
    ~HostNat();
    HostNat(const HostNat&) = delete;
    HostNat& operator=(const HostNat&) = delete;

    const std::string& table() const { return table_; }

private:
    void enable_forwarding();
    bool undo();
    std::filesystem::path file_;
    const log::Logger& log_;
    std::string table_;
    bool v6_ = false;
    std::string forward_before_;
    Forwarding forward4_before_, forward6_before_;
};

// Undoes what a killed run recorded in `state_file`, if anything (also when NAT is now off).
void undo_leftover_nat(const std::filesystem::path& state_file, const log::Logger& log);

}  // namespace tn::tuntool
