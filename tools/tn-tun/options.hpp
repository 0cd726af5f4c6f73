// tn-tun config files (SPEC §3 tn-tun): [server]/[[peer]] and [client] tables into plain structs.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tun/client_core.hpp"
#include "tun/server_core.hpp"

namespace tn::tuntool {

struct ServerOptions {
    std::filesystem::path config_file;  // read again on SIGHUP
    std::string listen = "0.0.0.0:51820";
    std::filesystem::path private_key_file;
    std::string tun = "tn0";
    tun::ServerSettings core;  // key, subnet, mtu, dns, routes, peers
    // `nat`: masquerade the subnet out of this device; "" for `nat = true` (the default route's).
    std::optional<std::string> nat;
    std::vector<std::string> warnings;  // to log at start (a key file others can read)
};

struct ClientOptions {
    std::filesystem::path config_file;  // read again on SIGHUP
    std::string server;  // host:port, resolved again when handshakes fail
    std::filesystem::path private_key_file;
    std::string tun = "tn0";
    bool apply_routes = true;
    bool apply_dns = false;  // use the pushed DNS servers while connected (tn-tun(1), "DNS")
    bool default_route = false;  // route everything through the tunnel, as if the server pushed 0.0.0.0/0
    // A full tunnel by policy routing with this mark and table (0: by halves; tn-tun(1), "Routes").
    // 29806 is 0x746e, "tn": not wg-quick's 51820, so the two can run side by side.
    std::uint32_t fwmark = 29806;
    std::string on_up, on_down;
    tun::ClientSettings core;  // key, server key, keepalive
    std::vector<std::string> warnings;  // to log at start (a key file others can read)
};

// Both throw tn::Error(config) listing every problem as FILE:LINE:COL (SPEC §2), or for an unreadable
// or malformed private key file.
ServerOptions load_server(const std::filesystem::path& file);
ClientOptions load_client(const std::filesystem::path& file);

// Reads a base64 private key file (one line). Throws tn::Error(config).
tun::Key read_private_key(const std::filesystem::path& file);

// The server's control socket: $STATE/tn-tun-<tun>.sock.
std::filesystem::path control_socket_path(const std::string& tun);

// A client's control socket: $STATE/tn-tun-client-<netns>-<tun>.sock (clients in two network
// namespaces may use one TUN name).
std::filesystem::path client_control_socket_path(const std::string& tun);

// What `status -c FILE` asks: a server or a client, and its TUN name, without checking the rest.
struct StatusTarget {
    bool client = false;
    std::string tun = "tn0";
};
StatusTarget status_target(const std::filesystem::path& file);

}  // namespace tn::tuntool
