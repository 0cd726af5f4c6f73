// TUN device creation via /dev/net/tun and its configuration through ip(8) (SPEC allows netlink or ip).
#include "io_tun.hpp"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "base/error.hpp"

extern char** environ;

namespace tn::tuntool {
namespace {
// linux/if_tun.h from 6.2 on; Debian 12's headers predate them. The kernel takes both or neither
// (IPv6 is not carried here, so only USO4 trains ever arrive).
constexpr unsigned long tun_f_uso = 0x20 | 0x40;  // TUN_F_USO4 | TUN_F_USO6
}  // namespace

namespace {

std::string find_program(const std::string& name) {
    if (name.find('/') != std::string::npos) return name;
    for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"})
        if (::access((dir + name).c_str(), X_OK) == 0) return dir + name;
    return name;
}

// Spawns argv with env added; with `out`, its stdout is read into *out (at most 64 KiB kept).
int spawn_and_wait(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                   std::string* out) {
    std::string path = find_program(argv.at(0));
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e) {
        std::string kv(*e);
        if (!env.count(kv.substr(0, kv.find('=')))) envs.push_back(kv);
    }
    for (auto& [k, v] : env) envs.push_back(k + "=" + v);
    std::vector<char*> av, ev;
    for (auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
    av.push_back(nullptr);
    for (auto& e : envs) ev.push_back(const_cast<char*>(e.c_str()));
    ev.push_back(nullptr);
    int pipefd[2] = {-1, -1};
    if (out && ::pipe2(pipefd, O_CLOEXEC) < 0) throw Error(ExitCode::io, std::string("pipe: ") + std::strerror(errno));
    UniqueFd rd(pipefd[0]), wr(pipefd[1]);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out) {
        posix_spawn_file_actions_adddup2(&fa, wr.get(), STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&fa, wr.get(), STDERR_FILENO);
    }
    // Our signals are blocked for the signalfd; the child must start with a clean mask.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    int rc = posix_spawn(&pid, path.c_str(), &fa, &attr, av.data(), ev.data());
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw Error(ExitCode::io, "cannot run " + path + ": " + std::strerror(rc));
    if (out) {
        wr.reset();
        char buf[4096];
        for (;;) {
            ssize_t n = ::read(rd.get(), buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            if (out->size() < (64u << 10)) out->append(buf, static_cast<std::size_t>(n));
        }
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
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
        // Checksums left to us and TCP/IPv4 segmentation: one read then carries up to 64 KiB of one
        // TCP flow (or UDP socket's GSO train), which we cut into MTU-sized packets ourselves (lib/tun/offload). IPv6 is not
        // carried, so no TSO6. A kernel that refuses still gives us the header (all reads then plain
        // packets) and takes super-packets we write, so the vnet mode stays on either way.
        // USO (UDP trains, Linux 6.2+) too where the kernel knows it; older ones refuse the flag.
        unsigned long features = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN;
        uso_ = ::ioctl(fd_.get(), TUNSETOFFLOAD, features | tun_f_uso) == 0;
        if (!uso_) ::ioctl(fd_.get(), TUNSETOFFLOAD, features);
        offload_ = true;
    }
    // We carry IPv4 only: keep the kernel's IPv6 chatter (router solicitations) off the tunnel.
    std::ofstream("/proc/sys/net/ipv6/conf/" + name_ + "/disable_ipv6") << "1\n";
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

void TunDevice::configure(std::uint32_t address, std::uint8_t prefix, std::uint16_t mtu) {
    ip({"addr", "flush", "dev", name_}, false);
    ip({"addr", "add", tun::ipv4_str(address) + "/" + std::to_string(prefix), "dev", name_}, true);
    ip({"link", "set", "dev", name_, "mtu", std::to_string(mtu), "up"}, true);
}

}  // namespace tn::tuntool
