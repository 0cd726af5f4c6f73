// Adding and removing the client's routes through ip(8), with the state file that survives SIGKILL.
#include "host_routes.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "base/error.hpp"
#include "base/unique_fd.hpp"
#include "io_tun.hpp"
#include "state_file.hpp"

namespace tn::tuntool {
namespace {

// Runs ip(8); its messages are kept from our stderr (a route already gone is expected at cleanup).
int ip(std::vector<std::string> args, std::string* msg = nullptr) {
    args.insert(args.begin(), "ip");
    std::string out;
    int rc = run_program_output(args, out);
    if (msg) *msg = out.substr(0, out.find('\n'));
    return rc;
}

// net.ipv4.conf.NAME.rp_filter (0 when unreadable: no IPv4 on this kernel).
int rp_filter(const std::string& name) {
    std::ifstream in("/proc/sys/net/ipv4/conf/" + name + "/rp_filter");
    int v = 0;
    return in >> v ? v : 0;
}

std::string join(const std::vector<std::string>& a) {
    std::string s;
    for (auto& x : a) s += (s.empty() ? "" : " ") + x;
    return s;
}

std::vector<std::string> with(std::vector<std::string> head, const tun::HostRoute& r) {
    auto a = r.ip_args();
    head.insert(head.end(), a.begin(), a.end());
    return head;
}

}  // namespace

std::string netns_id() {
    struct stat st {};
    if (::stat("/proc/self/ns/net", &st) != 0) return "0";
    return std::to_string(st.st_ino);
}

HostRoutes::HostRoutes(std::filesystem::path state_file, const log::Logger& log) : file_(std::move(state_file)), log_(log) {
    auto text = read_small_file(file_);
    if (!text) return;
    // Policy steps first (they were made after the routes they leave alone), newest first.
    auto steps = tun::parse_policy(*text);
    for (auto it = steps.rbegin(); it != steps.rend(); ++it) ip(it->del_args());
    auto left = tun::parse_routes(*text);
    // Newest first, as at a clean teardown. A route through the old TUN went with the device; the
    // host route to the server is what stays behind, and `ip route del` with the full spec removes
    // only that exact route.
    std::size_t removed = 0;
    for (auto it = left.rbegin(); it != left.rend(); ++it) removed += ip(with({"route", "del"}, *it)) == 0;
    removed += steps.size();
    if (removed) log_.warn("removed ", removed, " route(s) left by a tn-tun client that did not stop cleanly");
    std::filesystem::remove(file_);
}

HostRoutes::~HostRoutes() {
    try {
        clear();
    } catch (...) {  // a destructor must not throw; the file tells the next start what is left
    }
}

std::optional<tun::Underlay> HostRoutes::underlay(std::uint32_t server, const std::string& tun) {
    std::string out;
    if (run_program_output({"ip", "-4", "-o", "route", "get", tun::ipv4_str(server)}, out) == 0) {
        auto u = tun::parse_route_get(out);
        if (u && u->dev != tun) return last_underlay_ = u;
    }
    // The lookup points into the tunnel: our halves are in and the host route to the server is not
    // (gone with the network it went through). The main table says what the underlay is now.
    out.clear();
    if (run_program_output({"ip", "-4", "-o", "route", "show", "table", "main"}, out) == 0)
        if (auto u = tun::underlay_from_table(out, server, tun)) last_underlay_ = u;
    return last_underlay_;
}

bool HostRoutes::add(const tun::HostRoute& r) {
    if (std::find(added_.begin(), added_.end(), r) != added_.end()) return true;
    // `add`, never `replace`: a route the host already has for that prefix is not ours to change.
    std::string msg;
    if (ip(with({"route", "add"}, r), &msg) != 0) {
        log_.warn("route ", r.str(), " not added (", msg, "); a route the host has already is left as it is");
        return false;
    }
    added_.push_back(r);
    save();
    return true;
}

void HostRoutes::apply(const std::vector<tun::Route>& pushed, const std::string& tun,
                       std::optional<std::uint32_t> server) {
    std::optional<tun::Underlay> u;
    if (server) u = underlay(*server, tun);
    auto plan = tun::plan_routes(pushed, tun, server, u);
    bool pinned = true;
    for (auto& r : plan) {
        if (server && r.dst == tun::Route{*server, 32} && r.dev != tun) {
            // The host route to the server: without it, a route covering the server would loop the
            // tunnel's own datagrams. If the host has one already, theirs does the same job.
            std::string have;
            run_program_output({"ip", "-4", "route", "show", "exact", tun::cidr_str(r.dst)}, have);
            if (have.find_first_not_of(" \n") == std::string::npos) pinned = add(r);
            continue;
        }
        if (!pinned && server && tun::covers(r.dst, *server)) {
            log_.error("route ", r.str(), " skipped: it would send the tunnel's own datagrams into the tunnel");
            continue;
        }
        add(r);
    }
    // Then what is no longer wanted, newest first (the old host route last, after what it protected).
    for (auto i = added_.size(); i-- > 0;) {
        if (std::find(plan.begin(), plan.end(), added_[i]) != plan.end()) continue;
        ip(with({"route", "del"}, added_[i]));
        added_.erase(added_.begin() + static_cast<std::ptrdiff_t>(i));
        save();
    }
    if (server && !u) {
        bool covered = false;
        for (auto& r : pushed) covered = covered || tun::covers(r, *server);
        if (covered) log_.warn("no route to the server ", tun::ipv4_str(*server), " found to keep it off the tunnel");
    }
}

bool HostRoutes::strict_rp_filter(std::uint32_t server, std::uint32_t mark) {
    // The device the server's replies come in on: where the marked datagrams leave.
    std::string out;
    if (run_program_output({"ip", "-4", "-o", "route", "get", tun::ipv4_str(server), "mark", std::to_string(mark)}, out) != 0)
        return false;
    auto u = tun::parse_route_get(out);
    return tun::rp_filter_strict(rp_filter("all"), u && !u->local ? rp_filter(u->dev) : 0);
}

bool HostRoutes::apply_policy(const std::string& tun, std::uint32_t mark, bool v4, bool v6) {
    for (auto& s : policy_)  // ours in place already, at the priority chosen then
        if (s.kind == tun::PolicyStep::Kind::suppress_rule && tun::plan_policy(tun, mark, v4, v6, s.priority) == policy_)
            return true;
    clear_policy();  // a family more or less: from scratch
    if (mark == 0 || (!v4 && !v6)) return true;
    std::string rules;
    if (run_program_output({"ip", "-4", "rule", "show"}, rules) != 0) rules.clear();
    std::string rules6;
    if (run_program_output({"ip", "-6", "rule", "show"}, rules6) == 0) rules += rules6;
    auto priority = tun::free_policy_priority(rules);
    if (!priority) {
        log_.warn("policy routing: no two free rule priorities below the main table's; routing the full tunnel by halves instead");
        return false;
    }
    auto plan = tun::plan_policy(tun, mark, v4, v6, *priority);
    for (auto& s : plan) {
        policy_.push_back(s);  // recorded before it is made: a kill in between leaves it listed
        save();
        std::string msg;
        if (ip(s.add_args(), &msg) == 0) continue;
        policy_.pop_back();  // not made, so not ours to remove (an identical rule may be someone else's)
        save();
        log_.warn("policy routing not available (ip ", join(s.add_args()), ": ", msg,
                  "); routing the full tunnel by halves instead");
        clear_policy();
        return false;
    }
    return true;
}

void HostRoutes::clear_policy() {
    while (!policy_.empty()) {
        ip(policy_.back().del_args());  // a table route gone with its TUN: nothing to do
        policy_.pop_back();
        save();
    }
}

void HostRoutes::clear() {
    clear_policy();
    while (!added_.empty()) {
        ip(with({"route", "del"}, added_.back()));
        added_.pop_back();
        save();
    }
}

void HostRoutes::save() {
    std::error_code ec;
    if (added_.empty() && policy_.empty()) {
        std::filesystem::remove(file_, ec);
        return;
    }
    if (!write_private_file(file_, tun::format_routes(added_) + tun::format_policy(policy_)))
        log_.warn("cannot record the added routes in ", file_.string(), ": ", std::strerror(errno));
}

void HostRoutes6::apply(const std::vector<tun::Route6>& pushed, const std::string& tun) {
    if (tun != tun_) clear();
    tun_ = tun;
    auto plan = tun::plan_routes6(pushed);
    for (auto& r : plan) {
        if (std::find(added_.begin(), added_.end(), r) != added_.end()) continue;
        std::string msg;
        if (ip({"-6", "route", "add", tun::cidr_str(r), "dev", tun}, &msg) != 0) {
            log_.warn("route ", tun::cidr_str(r), " not added (", msg, "); a route the host has already is left as it is");
            continue;
        }
        added_.push_back(r);
    }
    for (auto i = added_.size(); i-- > 0;) {
        if (std::find(plan.begin(), plan.end(), added_[i]) != plan.end()) continue;
        ip({"-6", "route", "del", tun::cidr_str(added_[i]), "dev", tun_});
        added_.erase(added_.begin() + static_cast<std::ptrdiff_t>(i));
    }
}

void HostRoutes6::clear() {
    while (!added_.empty()) {
        ip({"-6", "route", "del", tun::cidr_str(added_.back()), "dev", tun_});
        added_.pop_back();
    }
}

}  // namespace tn::tuntool
