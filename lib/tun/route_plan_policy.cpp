// Policy-routing plan for the client's full tunnel (route_plan_policy.hpp): no I/O.
#include "tun/route_plan_policy.hpp"

#include "tun/route_plan.hpp"

#include <algorithm>
#include <charconv>
#include <set>

namespace tn::tun {
namespace {

std::optional<std::uint32_t> number(std::string_view s) {
    std::uint32_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

std::string fam(int family) { return family == 6 ? "-6" : "-4"; }

std::vector<std::string> ip_args(const PolicyStep& s, const char* verb) {
    auto t = std::to_string(s.table);
    switch (s.kind) {
    case PolicyStep::Kind::table_route:
        return {fam(s.family), "route", verb, s.family == 6 ? "::/0" : "0.0.0.0/0", "dev", s.dev, "table", t};
    case PolicyStep::Kind::suppress_rule:
        return {fam(s.family), "rule", verb, "table", "main", "suppress_prefixlength", "0", "priority",
                std::to_string(s.priority)};
    case PolicyStep::Kind::mark_rule:
        return {fam(s.family), "rule", verb, "not", "fwmark", t, "table", t, "priority", std::to_string(s.priority)};
    }
    return {};
}

// A rule line's priority: the word at `at` if there is one (a valid P or P + 1), else the fixed one
// of the versions before the choice (`fixed`).
std::optional<std::uint32_t> rule_priority(const std::vector<std::string>& w, std::size_t at, std::uint32_t fixed) {
    if (w.size() == at) return fixed;
    if (w.size() != at + 1) return std::nullopt;
    auto p = number(w[at]);
    if (!p || *p == 0) return std::nullopt;
    return p;
}

// One state line: "policy suppress FAMILY [P]", "policy rule FAMILY TABLE [P+1]" or
// "policy route FAMILY TABLE DEV".
std::optional<PolicyStep> parse_line(const std::vector<std::string>& w) {
    if (w.size() < 3 || w[0] != "policy") return std::nullopt;
    PolicyStep s;
    if (w[2] != "4" && w[2] != "6") return std::nullopt;
    s.family = w[2] == "6" ? 6 : 4;
    if (w[1] == "suppress") {
        auto p = rule_priority(w, 3, policy_default_priority);
        if (!p) return std::nullopt;
        s.kind = PolicyStep::Kind::suppress_rule;
        s.priority = *p;
        return s;
    }
    if (w.size() < 4) return std::nullopt;
    auto t = number(w[3]);
    if (!t || *t == 0) return std::nullopt;
    s.table = *t;
    if (w[1] == "rule") {
        auto p = rule_priority(w, 4, policy_default_priority + 1);
        if (!p) return std::nullopt;
        s.kind = PolicyStep::Kind::mark_rule;
        s.priority = *p;
        return s;
    }
    if (w[1] == "route" && w.size() == 5 && valid_ifname(w[4])) {
        s.kind = PolicyStep::Kind::table_route;
        s.dev = w[4];
        return s;
    }
    return std::nullopt;
}

}  // namespace

std::vector<std::string> PolicyStep::add_args() const { return ip_args(*this, "add"); }
std::vector<std::string> PolicyStep::del_args() const { return ip_args(*this, "del"); }

std::string PolicyStep::str() const {
    auto f = std::to_string(family), t = std::to_string(table);
    switch (kind) {
    case Kind::table_route: return "policy route " + f + " " + t + " " + dev;
    case Kind::suppress_rule: return "policy suppress " + f + " " + std::to_string(priority);
    case Kind::mark_rule: break;
    }
    return "policy rule " + f + " " + t + " " + std::to_string(priority);
}

std::optional<std::uint32_t> free_policy_priority(std::string_view rules) {
    // Each line: "PRIORITY:<tab>SELECTOR... lookup TABLE ..." (a continuation line has no "N:").
    std::set<std::uint32_t> taken;
    std::uint32_t main = 32766;
    bool main_seen = false;
    for (auto& w : word_lines(rules)) {
        if (w[0].size() < 2 || w[0].back() != ':') continue;
        auto p = number(std::string_view(w[0]).substr(0, w[0].size() - 1));
        if (!p) continue;
        taken.insert(*p);
        if (!main_seen && w == std::vector<std::string>{w[0], "from", "all", "lookup", "main"}) {
            main = *p;
            main_seen = true;
        }
    }
    for (std::uint32_t p = main < 2 ? 0 : main - 2; p >= 1; --p)
        if (!taken.contains(p) && !taken.contains(p + 1)) return p;
    return std::nullopt;
}

std::vector<PolicyStep> plan_policy(const std::string& tun, std::uint32_t mark, bool v4, bool v6, std::uint32_t priority) {
    std::vector<PolicyStep> out;
    if (mark == 0) return out;
    for (int family : {4, 6}) {
        if ((family == 4 && !v4) || (family == 6 && !v6)) continue;
        out.push_back(PolicyStep{PolicyStep::Kind::table_route, family, mark, tun, 0});
        out.push_back(PolicyStep{PolicyStep::Kind::suppress_rule, family, 0, {}, priority});
        out.push_back(PolicyStep{PolicyStep::Kind::mark_rule, family, mark, {}, priority + 1});
    }
    return out;
}

bool rp_filter_strict(int all, int dev) { return std::max(all, dev) == 1; }

std::string format_policy(const std::vector<PolicyStep>& steps) {
    std::string s;
    for (auto& p : steps) s += p.str() + "\n";
    return s;
}

std::vector<PolicyStep> parse_policy(std::string_view text) {
    std::vector<PolicyStep> out;
    for (auto& w : word_lines(text))
        if (auto s = parse_line(w)) out.push_back(*s);
    return out;
}

}  // namespace tn::tun
