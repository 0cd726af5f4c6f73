// The server as its clients' gateway (`[server] nat`, tn-tun(1) "NAT"): IPv4 forwarding on, and an
// nftables table of our own (`table ip tn-tun-TUN`) that masquerades the tunnel subnet, and the
// subnets behind peers (site to site), out of one device. Nothing else on the host is touched: the table is added and deleted whole, and
// net.ipv4.ip_forward is put back to what it was. What was changed is recorded in a 0600 state file
// before the change, so the next start after a SIGKILL undoes it exactly.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "base/log.hpp"
#include "tun/wire.hpp"

namespace tn::tuntool {

// The device `nat` names: itself, or for `nat = true` (an empty string here) the default route's.
// Throws tn::Error(config) when there is no such device or no default route, before anything changed.
std::string nat_device(const std::string& configured);

class HostNat {
public:
    // Undoes what a killed earlier run left (listed in `state_file`), then sets up NAT. Throws
    // tn::Error(io) when nft fails (then nothing stays changed).
    HostNat(std::filesystem::path state_file, const std::string& tun, const std::string& device,
            const std::vector<tun::Route>& sources, const log::Logger& log);
    ~HostNat();
    HostNat(const HostNat&) = delete;
    HostNat& operator=(const HostNat&) = delete;

    const std::string& table() const { return table_; }

private:
    void undo(const std::string& table, const std::string& forward);
    std::filesystem::path file_;
    const log::Logger& log_;
    std::string table_;
    std::string forward_before_;
};

// Undoes what a killed run recorded in `state_file`, if anything (also when NAT is now off).
void undo_leftover_nat(const std::filesystem::path& state_file, const log::Logger& log);

}  // namespace tn::tuntool
