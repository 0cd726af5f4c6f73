// tn-route's configuration (SPEC §3): the plain struct and its loader from TOML.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/net_addr.hpp"
#include "base/runtime_dir.hpp"
#include "base/secret.hpp"
#include "relay/claims.hpp"

namespace tn::route {

struct Group {
    std::string name;
    Secret token;
    relay::GroupClaims claims;  // custom domains and remote ports its serves may take (none when absent)
};

struct RouteConfig {
    std::string source;  // the config file, "" when none
    HostPort listen{"0.0.0.0", 7749};
    bool tls = true;
    std::string proxy_bind;  // the host remote_port listeners bind; the listen host when not set
    // A UDP remote_port's flows (one per source address): closed after this long without a datagram
    // either way, and at most this many at once (a new source over it is dropped and counted).
    unsigned udp_idle_timeout = 60;
    std::size_t udp_max_flows = 256;
    std::filesystem::path cert, key;
    std::vector<Group> groups;
    std::optional<HostPort> http_listen;
    std::optional<HostPort> https_listen;  // [http] listen_tls: HTTPS vhosts by SNI, relayed unopened
    std::optional<HostPort> dashboard_listen;
    std::string dashboard_user;
    Secret dashboard_password;
    const Group* group(const std::string& name) const {
        for (const auto& g : groups)
            if (g.name == name) return &g;
        return nullptr;
    }
};

// Loads and validates FILE (every problem reported at once as FILE:LINE:COL, exit 78). cert/key
// default to tn-route.crt/.key beside the config file: they must outlive reboots, because vnets pin
// the fingerprint.
RouteConfig load_route_config(const std::string& path);

// Where tn-route looks without -c: $XDG_CONFIG_HOME/tn/tn-route.toml (~/.config/tn/ when unset), then
// /etc/tn/tn-route.toml. A route with no config would listen on every address with no group: better
// refuse than guess (the caller exits 64 when neither exists).
std::vector<std::filesystem::path> route_config_candidates(const EnvLookup& env = process_env());
// The first candidate that exists, "" when none does.
std::string find_route_config(const EnvLookup& env = process_env());

// The control socket of the route listening on `port` ($STATE/tn-route-PORT.sock).
std::filesystem::path route_socket_path(std::uint16_t port);

}  // namespace tn::route
