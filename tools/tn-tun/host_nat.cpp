// NAT for the tunnel subnet and the peers' site subnets through nft(8) and /proc/sys/net/ipv4/ip_forward, undone exactly.
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

std::string read_forward() {
    auto v = read_small_file(forward_sysctl, 16);
    if (!v) throw Error(ExitCode::io, std::string("cannot read ") + forward_sysctl + ": " + std::strerror(errno));
    return v->substr(0, v->find('\n'));
}

bool write_forward(const std::string& value) {
    std::ofstream f(forward_sysctl);
    f << value << "\n";
    f.flush();
    return static_cast<bool>(f);
}

// nft names: letters, digits, '_' and '-' only (a TUN name may hold other characters).
std::string table_name(const std::string& tun) {
    std::string t = "tn-tun-";
    for (char c : tun) t += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
    return t;
}

// The ruleset, applied by `nft -f` as one transaction. The first two lines make a table left by
// someone else's run of the same name ours to replace. Forwarding to the clients is only for replies;
// when ip_forward was off before us, only the tunnel's traffic is forwarded, so turning it on does
// not make the host a router for anyone else.
std::string ruleset(const std::string& table, const std::string& tun, const std::string& dev,
                    const std::vector<tun::Route>& sources, bool forward_was_on) {
    std::string set;
    for (auto r : sources) {
        if (r.prefix < 32) r.addr &= r.prefix == 0 ? 0 : ~0u << (32 - r.prefix);
        set += (set.empty() ? "" : ", ") + tun::cidr_str(r);
    }
    std::ostringstream s;
    s << "table ip " << table << "\ndelete table ip " << table << "\ntable ip " << table << " {\n"
      << "  chain forward {\n    type filter hook forward priority filter; policy accept;\n"
      << "    iifname \"" << dev << "\" oifname \"" << tun << "\" ct state != { established, related } drop\n";
    if (!forward_was_on) s << "    iifname != \"" << tun << "\" oifname != \"" << tun << "\" drop\n";
    s << "  }\n  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n"
      << "    ip saddr { " << set << " } oifname \"" << dev << "\" masquerade\n  }\n}\n";
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

void undo_leftover_nat(const std::filesystem::path& state_file, const log::Logger& log) {
    auto text = read_small_file(state_file);
    if (!text) return;
    std::istringstream in(*text);
    std::string table, forward;
    in >> table >> forward;
    bool changed = false;
    if (table.rfind("tn-tun-", 0) == 0) changed |= nft({"delete", "table", "ip", table}) == 0;
    if ((forward == "0" || forward == "1") && read_forward() != forward) changed |= write_forward(forward);
    if (changed) log.warn("undid the NAT left by a tn-tun server that did not stop cleanly (table ", table,
                          ", ip_forward ", forward, ")");
    std::filesystem::remove(state_file);
}

HostNat::HostNat(std::filesystem::path state_file, const std::string& tun, const std::string& device,
                 const std::vector<tun::Route>& sources, const log::Logger& log)
    : file_(std::move(state_file)), log_(log), table_(table_name(tun)) {
    undo_leftover_nat(file_, log_);
    forward_before_ = read_forward();
    // Recorded before the change: a kill in between leaves a record of something not done, which
    // the next start undoes harmlessly.
    if (!write_private_file(file_, table_ + " " + forward_before_ + "\n"))
        throw Error(ExitCode::io, "cannot record the NAT state in " + file_.string() + ": " + std::strerror(errno));
    auto rules = file_.string() + ".nft";
    std::string msg;
    bool ok = write_private_file(rules, ruleset(table_, tun, device, sources, forward_before_ == "1")) &&
              nft({"-f", rules}, &msg) == 0;
    std::filesystem::remove(rules);
    if (!ok) {
        std::filesystem::remove(file_);
        throw Error(ExitCode::io, "cannot set up NAT with nft: " + (msg.empty() ? std::strerror(errno) : msg));
    }
    if (forward_before_ != "1" && !write_forward("1")) {
        undo(table_, forward_before_);
        throw Error(ExitCode::io, std::string("cannot turn on IPv4 forwarding: ") + std::strerror(errno));
    }
    std::string list;
    for (auto& r : sources) list += (list.empty() ? "" : ",") + tun::cidr_str(r);
    log_.info("nat on: ", list, " masqueraded out of ", device, " (nft table ip ", table_,
              ", ip_forward was ", forward_before_, ")");
}

HostNat::~HostNat() {
    try {
        undo(table_, forward_before_);
    } catch (...) {  // a destructor must not throw; the state file tells the next start
    }
}

void HostNat::undo(const std::string& table, const std::string& forward) {
    std::string msg;
    bool ok = nft({"delete", "table", "ip", table}, &msg) == 0;
    if (!ok) log_.warn("cannot delete nft table ip ", table, ": ", msg);
    if (read_forward() != forward && !write_forward(forward)) {
        ok = false;
        log_.warn("cannot put net.ipv4.ip_forward back to ", forward, ": ", std::strerror(errno));
    }
    if (ok) std::filesystem::remove(file_);
}

}  // namespace tn::tuntool
