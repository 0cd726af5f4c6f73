// NAT for the tunnel subnets and the peers' site subnets through nft(8), and the forwarding sysctls,
// undone exactly.
#include "host_nat.hpp"

#include <net/if.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/error.hpp"
#include "io_tun.hpp"
#include "state_file.hpp"

namespace tn::tuntool {
namespace {

constexpr const char* forward_sysctl = "/proc/sys/net/ipv4/ip_forward";

std::optional<std::string> read_value(const std::filesystem::path& path) {
    auto v = read_small_file(path, 16);
    if (!v) return std::nullopt;
    return v->substr(0, v->find('\n'));
}

bool write_value(const std::filesystem::path& path, const std::string& value) {
    std::ofstream f(path);
    f << value << "\n";
    f.flush();
    return static_cast<bool>(f);
}

std::string read_forward() {
    auto v = read_value(forward_sysctl);
    if (!v) throw Error(ExitCode::io, std::string("cannot read ") + forward_sysctl + ": " + std::strerror(errno));
    return *v;
}

bool write_forward(const std::string& value) { return write_value(forward_sysctl, value); }

std::filesystem::path conf_dir(int family) {
    return family == 6 ? "/proc/sys/net/ipv6/conf" : "/proc/sys/net/ipv4/conf";
}

std::filesystem::path switch_file(int family, const std::string& name) {
    return conf_dir(family) / name / "forwarding";
}

// A family's forwarding switches now: empty when "all" is on (nothing to change), else every
// switch, "all" first.
Forwarding read_switches(int family) {
    auto all = read_value(switch_file(family, "all"));
    if (!all)
        throw Error(ExitCode::io, "cannot read " + switch_file(family, "all").string() + ": " + std::strerror(errno));
    if (*all == "1") return {};
    Forwarding saved{{"all", *all}};
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator(conf_dir(family), ec)) {
        auto name = e.path().filename().string();
        if (name == "all") continue;
        if (auto v = read_value(switch_file(family, name))) saved.emplace_back(name, *v);
    }
    return saved;
}

// Puts `saved` back; a device gone since (our TUN) is skipped. False when a write failed.
bool restore_switches(int family, const Forwarding& saved) {
    bool ok = true;
    for (auto& [name, value] : saved) {
        if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") continue;
        auto path = switch_file(family, name);
        auto now = read_value(path);
        if (now && *now != value) ok &= write_value(path, value);
    }
    return ok;
}

std::string switches_str(const Forwarding& saved) {
    std::string s;
    for (auto& [name, value] : saved) s += " " + name + "=" + value;
    return s;
}

Forwarding parse_switches(std::istream& in) {
    Forwarding saved;
    for (std::string word; in >> word;)  // NAME=VALUE; a device name may hold '=', a value never does
        if (auto eq = word.rfind('='); eq != std::string::npos)
            saved.emplace_back(word.substr(0, eq), word.substr(eq + 1));
    return saved;
}

// nft names: letters, digits, '_' and '-' only (a TUN name may hold other characters).
std::string table_name(const std::string& tun) {
    std::string t = "tn-tun-";
    for (char c : tun) t += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
    return t;
}

std::string networks(const NatSources& sources, bool v6) {
    std::string set;
    if (v6) {
        for (auto& r : sources.v6)
            set += (set.empty() ? "" : ", ") + tun::cidr_str(tun::parse_cidr6(tun::cidr_str(r)));  // host bits cleared
        return set;
    }
    for (auto r : sources.v4) {
        if (r.prefix < 32) r.addr &= r.prefix == 0 ? 0 : ~0u << (32 - r.prefix);
        set += (set.empty() ? "" : ", ") + tun::cidr_str(r);
    }
    return set;
}

// One family's table. The first two lines make a table left by someone else's run of the same name
// ours to replace. Forwarding to the clients is only for replies; when forwarding was off before us,
// only the tunnel's traffic is forwarded, so turning it on does not make the host a router for
// anyone else.
std::string table_rules(const std::string& family, const std::string& table, const std::string& tun,
                        const std::string& dev, const std::string& set, bool forward_was_on) {
    std::ostringstream s;
    s << "table " << family << " " << table << "\ndelete table " << family << " " << table << "\ntable "
      << family << " " << table << " {\n"
      << "  chain forward {\n    type filter hook forward priority filter; policy accept;\n"
      << "    iifname \"" << dev << "\" oifname \"" << tun << "\" ct state != { established, related } drop\n";
    if (!forward_was_on) s << "    iifname != \"" << tun << "\" oifname != \"" << tun << "\" drop\n";
    s << "  }\n  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n"
      << "    " << family << " saddr { " << set << " } oifname \"" << dev << "\" masquerade\n  }\n}\n";
    return s.str();
}

int nft(std::vector<std::string> args, std::string* msg = nullptr) {
    args.insert(args.begin(), "nft");
    std::string out;
    int rc = run_program_output(args, out);
    if (msg) *msg = out.substr(0, out.find('\n'));
    return rc;
}

}  // namespace

std::string nat_device(const std::string& configured) {
    std::string dev = configured;
    if (dev.empty()) {
        std::string out;
        run_program_output({"ip", "-4", "-o", "route", "show", "default"}, out);
        std::istringstream in(out);
        for (std::string w; in >> w;)
            if (w == "dev" && in >> dev) break;
        if (dev.empty()) throw Error(ExitCode::config, "nat = true: there is no default route to take the device from; name it (nat = \"eth0\")");
    }
    if (::if_nametoindex(dev.c_str()) == 0)
        throw Error(ExitCode::config, "nat = \"" + dev + "\": no such network device");
    return dev;
}

// The state file: "TABLE IP_FORWARD", then a line "ip4 NAME=VALUE..." with the IPv4 forwarding
// switches to put back after ip_forward (which overwrites them all), and when IPv6 is masqueraded
// too a line "ip6 NAME=VALUE..." (no switches when they were on already).
void undo_leftover_nat(const std::filesystem::path& state_file, const log::Logger& log) {
    auto text = read_small_file(state_file);
    if (!text) return;
    std::istringstream in(*text);
    std::string line, table, forward, family;
    std::getline(in, line);
    std::istringstream(line) >> table >> forward;
    bool changed = false;
    if (table.rfind("tn-tun-", 0) != 0) table.clear();
    if (!table.empty()) changed |= nft({"delete", "table", "ip", table}) == 0;
    if ((forward == "0" || forward == "1") && read_forward() != forward) changed |= write_forward(forward);
    while (std::getline(in, line)) {
        std::istringstream words(line);
        words >> family;
        if (family != "ip4" && family != "ip6") continue;
        int f = family == "ip6" ? 6 : 4;
        auto saved = parse_switches(words);
        if (f == 6 && !table.empty()) changed |= nft({"delete", "table", "ip6", table}) == 0;
        changed |= !saved.empty() && read_switches(f) != saved && restore_switches(f, saved);
    }
    if (changed) log.warn("undid the NAT left by a tn-tun server that did not stop cleanly (table ", table,
                          ", ip_forward ", forward, ")");
    std::filesystem::remove(state_file);
}

HostNat::HostNat(std::filesystem::path state_file, const std::string& tun, const std::string& device,
                 const NatSources& sources, const log::Logger& log)
    : file_(std::move(state_file)), log_(log), table_(table_name(tun)), v6_(!sources.v6.empty()) {
    undo_leftover_nat(file_, log_);
    forward_before_ = read_forward();
    forward4_before_ = read_switches(4);
    if (v6_) forward6_before_ = read_switches(6);
    // Recorded before the change: a kill in between leaves a record of something not done, which
    // the next start undoes harmlessly.
    std::string record = table_ + " " + forward_before_ + "\nip4" + switches_str(forward4_before_) + "\n";
    if (v6_) record += "ip6" + switches_str(forward6_before_) + "\n";
    if (!write_private_file(file_, record))
        throw Error(ExitCode::io, "cannot record the NAT state in " + file_.string() + ": " + std::strerror(errno));
    auto rules = file_.string() + ".nft";
    std::string msg, text = table_rules("ip", table_, tun, device, networks(sources, false), forward_before_ == "1");
    if (v6_) text += table_rules("ip6", table_, tun, device, networks(sources, true), forward6_before_.empty());
    bool ok = write_private_file(rules, text) && nft({"-f", rules}, &msg) == 0;  // one transaction
    std::filesystem::remove(rules);
    if (!ok) {
        std::filesystem::remove(file_);
        throw Error(ExitCode::io, "cannot set up NAT with nft: " + (msg.empty() ? std::strerror(errno) : msg));
    }
    enable_forwarding();
    std::string v6_was = forward6_before_.empty() ? "1" : forward6_before_.front().second;  // "all" first
    log_.info("nat on: ", networks(sources, false), v6_ ? ", " + networks(sources, true) : "", " masqueraded out of ",
              device, " (nft table ip", v6_ ? " and ip6 " : " ", table_, ", ip_forward was ", forward_before_,
              v6_ ? ", IPv6 forwarding was " + v6_was : "", ")");
}

void HostNat::enable_forwarding() {
    const char* what = nullptr;
    if (forward_before_ != "1" && !write_forward("1")) what = "IPv4";
    else if (v6_ && !forward6_before_.empty() && !write_value(switch_file(6, "all"), "1")) what = "IPv6";
    if (!what) return;
    int err = errno;
    undo();
    throw Error(ExitCode::io, std::string("cannot turn on ") + what + " forwarding: " + std::strerror(err));
}

HostNat::~HostNat() {
    try {
        undo();
    } catch (...) {  // a destructor must not throw; the state file tells the next start
    }
}

bool HostNat::undo() {
    std::string msg;
    bool ok = true;
    for (const char* family : {"ip", "ip6"}) {
        if (std::string(family) == "ip6" && !v6_) break;
        if (nft({"delete", "table", family, table_}, &msg) != 0) {
            ok = false;
            log_.warn("cannot delete nft table ", family, " ", table_, ": ", msg);
        }
    }
    if (read_forward() != forward_before_ && !write_forward(forward_before_)) {
        ok = false;
        log_.warn("cannot put net.ipv4.ip_forward back to ", forward_before_, ": ", std::strerror(errno));
    }
    for (int family : {4, 6}) {
        auto& saved = family == 4 ? forward4_before_ : forward6_before_;
        if (restore_switches(family, saved)) continue;
        ok = false;
        log_.warn("cannot put the IPv", family, " forwarding switches back:", switches_str(saved));
    }
    if (ok) std::filesystem::remove(file_);
    return ok;
}

}  // namespace tn::tuntool
