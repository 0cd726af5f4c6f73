// The client's full tunnel by policy routing, as a pure plan (tn-tun(1), "Routes"), the way wg-quick
// does it: the client's UDP socket carries a firewall mark M; a table T holds `default dev TUN`; the
// rule `not fwmark M lookup T` sends every unmarked packet there, and `lookup main
// suppress_prefixlength 0` (earlier) lets the main table's more specific routes (the LAN, the
// tunnel's own subnet) win while ignoring its default route. The tunnel's datagrams carry M, skip
// table T and leave by the main table unchanged: no host route to the server, an IPv6 server works
// too, and nothing in the main table changes. Each step is recorded in the client's state file
// before it is made, so a killed client's steps are undone by the next start.
//
// Replies from the server arrive unmarked, so a strict IPv4 rp_filter checks their source against
// table T, finds the TUN and drops them. wg-quick copies the mark onto the replies through conntrack
// (nftables) and sets src_valid_mark for that check; we change neither: where the path to an IPv4
// server is strict, IPv4 keeps the halves (IPv6 has no rp_filter).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tn::tun {

// The rules' priorities: P for the suppressing rule, P + 1 for the one to table T, the highest pair
// just below the main table's rule (32766 unless moved) that no rule of the host holds in either
// family: 32764 and 32765 on a host with only the default rules, where wg-quick's land too. wg-quick
// leaves the choice to the kernel (one below the first rule after `local`: before every rule of the
// host) and removes its rules by matching their text, which takes a host's identical rule with them;
// ours keep their place just before main, beside no rule of the host's, and the state file records P
// so that cleanup removes exactly ours.
constexpr std::uint32_t policy_default_priority = 32764;

// P for the rules `ip -4 rule show` and `ip -6 rule show` list (both outputs, one after the other);
// nullopt when no free pair is left below main.
std::optional<std::uint32_t> free_policy_priority(std::string_view rules);

struct PolicyStep {
    enum class Kind { table_route, suppress_rule, mark_rule };
    Kind kind = Kind::table_route;
    int family = 4;              // 4 or 6
    std::uint32_t table = 0;     // T, also the mark M (table_route, mark_rule)
    std::string dev;             // table_route: the TUN
    std::uint32_t priority = 0;  // the rules: P (suppress_rule) or P + 1 (mark_rule)
    bool operator==(const PolicyStep&) const = default;

    // The arguments after `ip` that make and undo this step.
    std::vector<std::string> add_args() const;
    std::vector<std::string> del_args() const;
    std::string str() const;  // one line of the state file
};

// The steps, in order, for a full tunnel through `tun` with mark/table `mark` (0: none) for the
// families asked, with rule priorities P = `priority` and P + 1.
std::vector<PolicyStep> plan_policy(const std::string& tun, std::uint32_t mark, bool v4, bool v6,
                                    std::uint32_t priority = policy_default_priority);

// Whether IPv4 reverse-path filtering is strict on a device, from net.ipv4.conf.all.rp_filter and
// the device's own (the kernel takes the higher): 1 is strict, 0 off, 2 loose.
bool rp_filter_strict(int all, int dev);

// The state file's policy lines (other lines are skipped: the routes share the file). A rule line
// without a priority (written before priorities were chosen) reads as the fixed 32764/32765 of then.
std::string format_policy(const std::vector<PolicyStep>& steps);
std::vector<PolicyStep> parse_policy(std::string_view text);

}  // namespace tn::tun
