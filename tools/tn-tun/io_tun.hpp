// The TUN device and its IP configuration (address, MTU, routes) through ip(8).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/unique_fd.hpp"
#include "tun/wire.hpp"

namespace tn::tuntool {

// Runs argv (argv[0] looked up in /usr/sbin, /sbin, PATH) with `env` added to ours; returns its exit
// status (128+N when killed by signal N). Throws tn::Error(io) if it cannot be started.
int run_program(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {});
// The same, with the program's stdout and stderr read into `out` (for us to report or not).
int run_program_output(const std::vector<std::string>& argv, std::string& out);

class TunDevice {
public:
    // Creates (or attaches to) the TUN interface `name` without packet info, non-blocking. With
    // `offload`, every packet carries a virtio_net_hdr and the kernel may hand us TCP super-packets
    // (TSO) and packets with partial checksums; when the kernel refuses, offload() stays false.
    // Throws tn::Error(no_perm) without CAP_NET_ADMIN, tn::Error(io) otherwise.
    TunDevice(const std::string& name, bool offload);
    TunDevice(const TunDevice&) = delete;
    TunDevice& operator=(const TunDevice&) = delete;

    int fd() const { return fd_.get(); }
    const std::string& name() const { return name_; }
    bool offload() const { return offload_; }
    bool uso() const { return uso_; }  // the kernel also hands us UDP GSO trains

    // Reads one packet (behind its virtio_net_hdr when offload()); 0 when none is waiting.
    std::size_t read(std::uint8_t* buf, std::size_t cap);

    // Sets address/prefix and MTU and brings the link up (replacing any previous address). A
    // `txqueuelen` other than 0 sets the device's queue: the packets the kernel may hold for us
    // to read before it drops (the kernel's default is 500).
    void configure(std::uint32_t address, std::uint8_t prefix, std::uint16_t mtu, std::size_t txqueuelen = 0);
    // Turns IPv6 on with `address`/`prefix` (after configure(), which flushes addresses), or off.
    void configure6(const std::optional<tun::Ip6>& address, std::uint8_t prefix);

private:
    void sysctl6(const std::string& key, const std::string& value);
    void ip(const std::vector<std::string>& args, bool must);
    UniqueFd fd_;
    std::string name_;
    bool offload_ = false, uso_ = false;
};

}  // namespace tn::tuntool
