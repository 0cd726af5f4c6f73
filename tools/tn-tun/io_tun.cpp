// TUN device creation via /dev/net/tun and its configuration through ip(8) (SPEC allows netlink or ip).
#include "io_tun.hpp"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "base/error.hpp"
#include "base/spawn.hpp"

namespace tn::tuntool {
namespace {
// linux/if_tun.h from 6.2 on; Debian 12's headers predate them. The kernel takes both or neither;
// lib/tun/offload cuts trains of either family.
constexpr unsigned long tun_f_uso = 0x20 | 0x40;  // TUN_F_USO4 | TUN_F_USO6
}  // namespace

namespace {

// Runs argv with env added through the spawn seam (default signals, none of our descriptors: not the
// TUN device, not the UDP socket); with `out`, its stdout and stderr are read into *out (at most
// 64 KiB kept).
int spawn_and_wait(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                   std::string* out) {
    proc::Command cmd{.argv = argv, .search_first = {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}, .env = env};
    if (out) {
        cmd.out = proc::Output::pipe;
        cmd.err = proc::Output::merge;
    }
    proc::Child child;
    try {
        child = proc::spawn(cmd);
    } catch (const Error& e) {
        throw Error(ExitCode::io, e.what());
    }
    if (out) {
        char buf[4096];
        for (;;) {
            ssize_t n = ::read(child.out.get(), buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            if (out->size() < (64u << 10)) out->append(buf, static_cast<std::size_t>(n));
        }
    }
    return proc::shell_code(proc::wait_status(child.pid));
}

}  // namespace

int run_program(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
    return spawn_and_wait(argv, env, nullptr);
}

int run_program_output(const std::vector<std::string>& argv, std::string& out) {
    return spawn_and_wait(argv, {}, &out);
}

TunDevice::TunDevice(const std::string& name, bool offload) : name_(name) {
    fd_.reset(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!fd_) throw Error(errno == EACCES || errno == EPERM ? ExitCode::no_perm : ExitCode::io,
                          std::string("cannot open /dev/net/tun: ") + std::strerror(errno));
    ifreq ifr{};
    ifr.ifr_flags = static_cast<short>(IFF_TUN | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0));
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    if (::ioctl(fd_.get(), TUNSETIFF, &ifr) < 0)
        throw Error(errno == EPERM ? ExitCode::no_perm : ExitCode::io,
                    "cannot create TUN device " + name + ": " + std::strerror(errno));
    name_ = ifr.ifr_name;
    if (offload) {
        // Checksums left to us and TCP segmentation (IPv4 and IPv6): one read then carries up to
        // 64 KiB of one TCP flow (or UDP socket's GSO train), which we cut into MTU-sized packets
        // ourselves (lib/tun/offload). A kernel that refuses still gives us the header (all reads
        // then plain packets) and takes super-packets we write, so the vnet mode stays on either way.
        // USO (UDP trains, Linux 6.2+) too where the kernel knows it; older ones refuse the flag.
        unsigned long features = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
        uso_ = ::ioctl(fd_.get(), TUNSETOFFLOAD, features | tun_f_uso) == 0;
        if (!uso_) ::ioctl(fd_.get(), TUNSETOFFLOAD, features);
        offload_ = true;
    }
    // IPv6 stays off until configure6() gives the device an address, and then gets no link-local
    // address: without one the kernel sends no router solicitations or MLD reports into the tunnel.
    sysctl6("addr_gen_mode", "1");
    sysctl6("disable_ipv6", "1");
}

void TunDevice::sysctl6(const std::string& key, const std::string& value) {
    std::ofstream("/proc/sys/net/ipv6/conf/" + name_ + "/" + key) << value << "\n";
}

void TunDevice::configure6(const std::optional<tun::Ip6>& address, std::uint8_t prefix) {
    if (!address) {
        sysctl6("disable_ipv6", "1");
        return;
    }
    sysctl6("disable_ipv6", "0");
    // nodad: the address is ours alone on a point-to-point device, usable at once.
    ip({"-6", "addr", "replace", tun::ipv6_str(*address) + "/" + std::to_string(prefix), "dev", name_, "nodad"}, true);
}

std::size_t TunDevice::read(std::uint8_t* buf, std::size_t cap) {
    ssize_t n = ::read(fd_.get(), buf, cap);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
}

void TunDevice::ip(const std::vector<std::string>& args, bool must) {
    std::vector<std::string> argv{"ip"};
    argv.insert(argv.end(), args.begin(), args.end());
    int rc = run_program(argv);
    if (rc != 0 && must) {
        std::string cmd;
        for (auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
        throw Error(ExitCode::io, "'" + cmd + "' failed with status " + std::to_string(rc));
    }
}

void TunDevice::configure(std::uint32_t address, std::uint8_t prefix, std::uint16_t mtu, std::size_t txqueuelen) {
    ip({"addr", "flush", "dev", name_}, false);
    ip({"addr", "add", tun::ipv4_str(address) + "/" + std::to_string(prefix), "dev", name_}, true);
    std::vector<std::string> link{"link", "set", "dev", name_, "mtu", std::to_string(mtu)};
    if (txqueuelen) link.insert(link.end(), {"txqueuelen", std::to_string(txqueuelen)});
    link.push_back("up");
    ip(link, true);
}

}  // namespace tn::tuntool
