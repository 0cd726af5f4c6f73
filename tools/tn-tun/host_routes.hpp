// The routes a tn-tun client added to the host, and only those: added with `ip route add` (never
// replace, so a route the host already has is left alone and not ours), recorded in a 0600 state file
// after each change, removed in reverse order at teardown. A run that was killed leaves the file
// behind; the next start removes exactly what it lists (tn-tun(1), "Routes").
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/log.hpp"
#include "tun/route_plan.hpp"
#include "tun/route_plan6.hpp"
#include "tun/route_plan_policy.hpp"

namespace tn::tuntool {

// The inode of this process's network namespace: what tells one host's routing table from another's
// (single-instance locks and state files are keyed by it, not by the TUN name alone).
std::string netns_id();

class HostRoutes {
public:
    // Removes what a killed earlier run left (listed in `state_file`), then starts empty.
    HostRoutes(std::filesystem::path state_file, const log::Logger& log);
    ~HostRoutes();
    HostRoutes(const HostRoutes&) = delete;
    HostRoutes& operator=(const HostRoutes&) = delete;

    // Makes the routes we added match `pushed`: new ones are added (a host route to the server
    // first), ones no longer wanted removed. `server` is the server's IPv4 address, if it is one.
    void apply(const std::vector<tun::Route>& pushed, const std::string& tun, std::optional<std::uint32_t> server);
    // Removes every route we added, newest first, and the state file.
    void clear();
    const std::vector<tun::HostRoute>& added() const { return added_; }

    // The full tunnel by policy routing (lib/tun/route_plan_policy) for the families asked, with
    // the mark the UDP socket carries. Each step is in the state file before it is made. False when
    // a step failed (no policy routing on this kernel, or another's rule or table in the way):
    // what was made is undone and the caller routes by halves instead.
    bool apply_policy(const std::string& tun, std::uint32_t mark, bool v4, bool v6);
    // Whether a strict IPv4 rp_filter would drop the replies of `server` reached with `mark` (they
    // arrive unmarked: lib/tun/route_plan_policy.hpp).
    bool strict_rp_filter(std::uint32_t server, std::uint32_t mark);
    // Undoes the policy steps, newest first.
    void clear_policy();
    const std::vector<tun::PolicyStep>& policy() const { return policy_; }

private:
    std::optional<tun::Underlay> underlay(std::uint32_t server, const std::string& tun);
    bool add(const tun::HostRoute& r);
    void save();
    std::filesystem::path file_;
    const log::Logger& log_;
    std::vector<tun::HostRoute> added_;
    std::vector<tun::PolicyStep> policy_;
    std::optional<tun::Underlay> last_underlay_;
};

// The client's IPv6 routes through its TUN (lib/tun/route_plan6): `ip -6 route add`, never replace.
// They all go through the TUN and leave with it, so a killed client leaves none behind and no state
// file is needed.
class HostRoutes6 {
public:
    explicit HostRoutes6(const log::Logger& log) : log_(log) {}
    ~HostRoutes6() { clear(); }
    HostRoutes6(const HostRoutes6&) = delete;
    HostRoutes6& operator=(const HostRoutes6&) = delete;

    // Makes the routes we added match `pushed` (::/0 in halves).
    void apply(const std::vector<tun::Route6>& pushed, const std::string& tun);
    void clear();
    const std::vector<tun::Route6>& added() const { return added_; }

private:
    const log::Logger& log_;
    std::string tun_;
    std::vector<tun::Route6> added_;
};

}  // namespace tn::tuntool
