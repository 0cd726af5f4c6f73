// tn-tun: a UDP TUN VPN with one server and many clients (SPEC §3 tn-tun). Subcommands: keygen,
// pubkey, server, client, status.
#include <CLI/CLI.hpp>

#include <iostream>

#include "base/error.hpp"
#include "common/cli.hpp"
#include "control.hpp"
#include "enrol.hpp"
#include "runner.hpp"

int main(int argc, char** argv) {
    tn::cli::CommonOptions common;
    CLI::App app("A UDP TUN VPN: one server, many clients, pushed addresses and routes.", "tn-tun");
    tn::cli::add_common_options(app, common, false);
    app.require_subcommand(1);
    app.fallthrough();  // -v, --log-format may also come before the subcommand

    auto* keygen = app.add_subcommand("keygen", "Print a new base64 X25519 private key (or write it to -o FILE, 0600)");
    std::string key_out;
    keygen->add_option("-o,--output", key_out, "Write the key to this new file (mode 0600) instead of stdout");
    auto* genpsk = app.add_subcommand("genpsk", "Print a new base64 pre-shared key (or write it to -o FILE, 0600)");
    genpsk->add_option("-o,--output", key_out, "Write the key to this new file (mode 0600) instead of stdout");
    auto* pubkey = app.add_subcommand("pubkey", "Read a private key on stdin, print its public key");
    auto* server = app.add_subcommand("server", "Run the VPN server (needs -c FILE)");
    server->fallthrough();  // -c may come after add-peer/remove-peer too
    tn::tuntool::AddPeer enrol;
    auto* add_peer = server->add_subcommand("add-peer", "Add a peer to the server's config (new keys), reload a running server, print the client's config");
    add_peer->add_option("name", enrol.name, "The peer's name (also names its key files)")->required();
    add_peer->add_option("--endpoint", enrol.endpoint, "HOST:PORT clients reach the server at (default: [server] listen)");
    add_peer->add_option("-o,--output-dir", enrol.out_dir, "Where the client's key files go (default: the current directory)");
    add_peer->add_flag("--psk", enrol.psk, "Also make a pre-shared key for the pair");
    std::string remove_name;
    auto* remove_peer = server->add_subcommand("remove-peer", "Remove a peer from the server's config; a running server ends its session at once");
    remove_peer->add_option("name", remove_name, "The peer's name")->required();
    auto* client = app.add_subcommand("client", "Run a VPN client (needs -c FILE)");
    auto* status = app.add_subcommand("status", "Show a running server's peers and counters, or a client's session");
    for (auto* sub : {server, client, status}) {
        tn::cli::add_common_options(*sub, common, true);
        sub->set_version_flag("--version", std::string("tn-tun ") + TN_VERSION, "Print the version and exit");
    }
    bool json = false, client_status = false;
    std::string socket, tun_name;
    status->add_flag("--json", json, "One JSON document on stdout");
    status->add_option("--socket", socket, "Control socket path (default $STATE/tn-tun-TUN.sock)");
    status->add_option("--tun", tun_name, "The TUN name, to find the socket (default: from -c, else tn0)");
    status->add_flag("--client", client_status, "Ask the client on that TUN in this network namespace (implied by -c CLIENT.toml)");

    return tn::cli::run(app, common, argc, argv, [&](const tn::log::Logger& log) -> int {
        using tn::Error;
        using tn::ExitCode;
        if (*keygen) return tn::tuntool::keygen(std::cout, key_out, log);
        if (*genpsk) return tn::tuntool::keygen(std::cout, key_out, log, true);
        if (*pubkey) return tn::tuntool::pubkey(std::cin, std::cout);
        if (*server || *client) {
            if (common.config.empty()) throw tn::ParseError(std::string(*server ? "server" : "client") + " needs -c FILE");
            if (*add_peer) {
                enrol.config = common.config;
                return tn::tuntool::add_peer(enrol, std::cout, log);
            }
            if (*remove_peer) return tn::tuntool::remove_peer(common.config, remove_name, log);
            if (*server) {
                auto o = tn::tuntool::load_server(common.config);
                for (auto& w : o.warnings) log.warn(w);
                return common.check_config ? 0 : tn::tuntool::run_server(o, log);
            }
            auto o = tn::tuntool::load_client(common.config);
            for (auto& w : o.warnings) log.warn(w);
            return common.check_config ? 0 : tn::tuntool::run_client(o, log);
        }
        if (socket.empty()) {
            tn::tuntool::StatusTarget target;
            if (!common.config.empty()) target = tn::tuntool::status_target(common.config);
            if (!tun_name.empty()) target.tun = tun_name;
            socket = (client_status || target.client ? tn::tuntool::client_control_socket_path(target.tun)
                                                     : tn::tuntool::control_socket_path(target.tun)).string();
        }
        std::cout << tn::tuntool::query_status(socket, json) << std::flush;
        return 0;
    });
}
