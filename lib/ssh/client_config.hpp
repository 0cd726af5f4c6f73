// What an SSH-based tool needs to reach a host: the SPEC §2 options after CLI and config are merged.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/secret.hpp"

namespace tn::ssh {

struct ClientConfig {
    std::string host;  // as typed: an ~/.ssh/config alias or an address
    std::string user;  // empty: from ssh config, else the local user
    std::optional<std::uint16_t> port;
    std::vector<std::filesystem::path> identities;  // -i; tried before the defaults
    std::filesystem::path ssh_dir;                  // ~/.ssh of the client's HOME
    std::optional<std::filesystem::path> ssh_config;   // default ssh_dir/config
    std::optional<std::filesystem::path> known_hosts;  // default ssh_dir/known_hosts
    int connect_timeout_s = 10;
    bool accept_new = false;  // pin an unknown host key (after reporting its fingerprint)
    bool use_agent = true;
    // false: a key that accept_new would pin is trusted for this session but not written (--dry-run).
    bool record_new_keys = true;

    std::filesystem::path known_hosts_path() const { return known_hosts ? *known_hosts : ssh_dir / "known_hosts"; }
    std::filesystem::path ssh_config_path() const { return ssh_config ? *ssh_config : ssh_dir / "config"; }
};

// How the first login may authenticate, in order: agent, identity files, password.
struct AuthOptions {
    bool agent = true;
    bool identities = true;
    std::optional<Secret> password;
};

}  // namespace tn::ssh
