// tn-keysetup's settings: defaults < [keysetup] in -c FILE < command line.
#pragma once

#include <optional>
#include <string>

#include "ssh/client_config.hpp"
#include "ssh/keys.hpp"

namespace tn::keysetup {

struct Options {
    std::string target;  // [user@]host[:port], or host from the config
    std::string user;
    std::optional<std::uint16_t> port;
    std::string identity;  // default ~/.ssh/id_<type>
    std::string type = "ed25519";
    std::string ssh_config, known_hosts;
    int connect_timeout = 10;
    bool accept_new = false;
    bool password_stdin = false;
    bool check = false;
    bool dry_run = false;
};

// Fills unset fields of `cli` from the [keysetup] table of FILE; throws tn::Error(config).
// `set` says which CLI fields the user gave, so the file never overrides them.
struct GivenOnCli {
    bool target = false, user = false, port = false, identity = false, type = false, ssh_config = false,
         known_hosts = false, connect_timeout = false;
};
void merge_config_file(const std::string& file, const GivenOnCli& given, Options& opts);

// The libssh-facing settings and the key path, from merged options and the environment.
struct Plan {
    ssh::ClientConfig client;
    ssh::KeyType key_type = ssh::KeyType::ed25519;
    std::filesystem::path key;
};
Plan make_plan(const Options& opts);  // throws ParseError for a bad target or type

}  // namespace tn::keysetup
