// tn-vnet's configuration (SPEC §3, the vnet-v2 keys in TOML): the plain structs and their loader.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/net_addr.hpp"
#include "base/secret.hpp"
#include "relay/e2e.hpp"

namespace tn::config {
class Table;
}

namespace tn::vnet {

struct ServeCfg {
    std::string name;
    std::uint16_t id = 0;  // 0: dynamic, the route assigns one
    std::string type = "tcp";
    std::string ip = "127.0.0.1";
    std::uint16_t port = 0;
    std::string info;
    bool active = true;
    std::uint16_t remote_port = 0;
    std::vector<std::string> custom_domains;
};

struct UseCfg {
    std::string name;
    std::uint16_t id = 0;
    std::string ip = "127.0.0.1";
    std::uint16_t port = 0;  // 0: the serve's own port
    bool active = true;
    std::string type = "tcp";  // must match the serve's: "tcp" or "udp"
    // type = "udp": a flow (one source address) ends after this long without a datagram either way
    // (frp's and conntrack's 60 s); at most this many flows at once, datagrams from new sources
    // beyond it are dropped and counted.
    std::uint32_t udp_idle_timeout = 60;
    std::size_t udp_max_flows = 256;
};

struct VnetConfig {
    std::string source;
    // [route] address: one route, or several in failover order (the agent stays on the first that
    // answers and moves down the list when its session ends); never empty, no address twice.
    std::vector<HostPort> routes;
    Secret token;
    std::string fingerprint;  // normalised "sha256:<hex>"
    bool tls = true;
    std::string name = "vnet";
    std::string group = "default";
    bool terminal = false;
    bool start_serve = true;
    bool start_use = true;
    bool allow_unserve = false;
    bool unserve_remote = false;
    int unserve_num = 1;
    // Pre-opened links kept ready to the route, for uses (parked) and for serves (standby) each, so a
    // new proxied connection costs one round trip instead of a connect and a TLS handshake per side.
    std::size_t link_pool = 2;
    // [vnet] e2e_secret / e2e_secret_file: every link of this vnet runs the end-to-end handshake
    // (PROTOCOL.relay.md §12) and refuses links without it; unset, links are as before.
    std::optional<relay::E2eSecret> e2e_secret;
    std::string e2e_secret_path;  // e2e_secret_file, resolved (warned about when others can read it)
    std::vector<ServeCfg> serves;
    std::vector<UseCfg> uses;
};

// At most this many routes in one [route] address list.
inline constexpr std::size_t kMaxRoutes = 16;

// [route] address's list (or --route's repeats), each "HOST:PORT": at least one, at most kMaxRoutes,
// none twice. Throws ParseError naming the bad entry.
std::vector<HostPort> parse_routes(const std::vector<std::string>& list);

// The routes as the user wrote them, comma-separated (logs and messages).
std::string routes_text(const std::vector<HostPort>& routes);

// The token in `file` (token_file = ..., relative to the config's folder); a problem is recorded on t.
Secret token_from_file(const config::Table& t, const std::string& config_path, const std::string& file);

// Loads and validates FILE; every problem is reported as FILE:LINE:COL and the load throws (78).
VnetConfig load_vnet_config(const std::string& path);

}  // namespace tn::vnet
