// tn-vnet: the agent on a private host. `tn-vnet -c FILE` runs it; `ctl` and `shell` talk to it.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>

#include "base/error.hpp"
#include "base/secret_file.hpp"
#include "common/cli.hpp"
#include "import_vnet.hpp"
#include "quick_start.hpp"
#include "relay/digest.hpp"
#include "relay/e2e.hpp"
#include "relay/io_tls.hpp"
#include "vnet_runner.hpp"

namespace {

struct ImportArgs {
    std::string file, token_out, token_file, fingerprint;
};

// `tn-vnet import FILE`: the TOML on stdout once the whole file converted, the token (if asked) in a
// new 0600 file; nothing half-written on bad input (65).
int run_import(const ImportArgs& a) {
    if (!a.token_out.empty() && !a.token_file.empty()) throw tn::Error(tn::ExitCode::usage, "--token-out and --token-file exclude each other");
    tn::vnet::ImportOptions o;
    if (!a.fingerprint.empty()) {
        o.fingerprint = tn::relay::normalize_fingerprint(a.fingerprint);
        if (o.fingerprint.empty()) throw tn::Error(tn::ExitCode::usage, "--fingerprint: not a SHA256 fingerprint (as 'tn-route fingerprint' prints)");
    }
    if (!a.token_file.empty()) o.token_file = std::filesystem::absolute(a.token_file).string();
    if (!a.token_out.empty()) {
        o.token_file = std::filesystem::absolute(a.token_out).string();
        o.token_out = true;
    }
    auto r = tn::vnet::import_vnet_text(tn::import::read_source(a.file), a.file, o);
    if (o.token_out) {
        if (!r.token) throw tn::Error(tn::ExitCode::usage, a.file + " holds no token to write (" + r.from + "): use --token-file with the route group's token");
        tn::write_secret_file(a.token_out, *r.token);
    }
    std::cout << r.toml << std::flush;
    return 0;
}

// The flags `serve` and `use` share; `serve` adds what only a published port has.
void add_quick_flags(CLI::App* sub, tn::vnet::QuickArgs& q) {
    sub->add_option("--route", q.routes, "The route's HOST:PORT; repeat for failover routes, in order")
        ->required()
        ->expected(1)
        ->take_all();
    sub->add_option("--token-file", q.token_file, "File holding the group's token (mode 0600)")->required();
    sub->add_option("--fingerprint", q.fingerprint, "The route's certificate fingerprint ('tn-route fingerprint')")->required();
    sub->add_option("--group", q.group, "Group (default: default)");
    sub->add_option("--name", q.name, "Vnet name (default: serve-ID or use-ID)");
    sub->add_option("--ip", q.ip, "Local address (default: 127.0.0.1)");
    sub->add_option("--type", q.type, "tcp (default) or udp; a use's must match its serve's")->check(CLI::IsMember({"tcp", "udp"}));
}

}  // namespace

int main(int argc, char** argv) {
    tn::cli::CommonOptions common;
    CLI::App app("Agent for tn-route: serve local services, use remote ones, unserve on request.", "tn-vnet");
    tn::cli::add_common_options(app, common);
    app.fallthrough();
    std::string socket;
    bool json = false;
    std::vector<std::string> words;
    app.add_subcommand("run", "Run the agent (the default)");
    auto* ctl = app.add_subcommand("ctl", "Send one command to the running vnet: show, ping, unserve, serve, use, reload");
    ctl->add_option("--socket", socket, "Control socket (default: from -c FILE's vnet name)");
    ctl->add_flag("--json", json, "JSON output");
    std::string local;
    ctl->add_option("--local", local, "unserve: also map the granted service on this local [IP:]PORT");
    std::string ctl_type;
    ctl->add_option("--type", ctl_type, "serve|use new|run: tcp (the default) or udp");
    ctl->add_option("command", words, "show serve|use|serves|vnet|vnets, ping, unserve VNETID [IP:]PORT, ...");
    ctl->prefix_command(false);
    ctl->allow_extras();
    auto* shell = app.add_subcommand("shell", "The same commands interactively, against the running vnet");
    shell->add_option("--socket", socket, "Control socket (default: from -c FILE's vnet name)");
    ImportArgs imp;
    auto* import = app.add_subcommand("import", "Print a tn-vnet config made from a vnet-v2 config.ini or an frpc .ini/.toml");
    import->add_option("file", imp.file, "The config to convert")->required();
    import->add_option("--token-out", imp.token_out, "Write the file's token to this new file (0600) and refer to it");
    import->add_option("--token-file", imp.token_file, "Refer to this token file (the route group's token)");
    import->add_option("--fingerprint", imp.fingerprint, "The route's certificate fingerprint ('tn-route fingerprint')");
    tn::vnet::QuickArgs qs, qu;
    qu.serve = false;
    auto* serve = app.add_subcommand("serve", "Serve one local port without a config file (like 'frpc tcp')");
    add_quick_flags(serve, qs);
    serve->add_option("--port", qs.port, "Local port to serve")->required();
    serve->add_option("--id", qs.id, "Serve id (500-999 static, 1-499 dynamic; default: the route assigns one)");
    serve->add_option("--remote-port", qs.remote_port, "Also have the route listen publicly on this port");
    serve->add_option("--domain", qs.domains, "Custom domain for the route's HTTP vhosts; repeatable");
    auto* use = app.add_subcommand("use", "Map one serve id to a local port without a config file");
    add_quick_flags(use, qu);
    use->add_option("--id", qu.id, "The serve id to use (1-999)")->required();
    use->add_option("--port", qu.port, "Local port to listen on")->required();
    auto* genkey = app.add_subcommand("genkey", "Print a new end-to-end secret for [vnet] e2e_secret (like 'wg genpsk')");
    app.require_subcommand(0, 1);

    return tn::cli::run(app, common, argc, argv, [&](const tn::log::Logger& log) {
        if (ctl->parsed()) {
            auto extra = ctl->remaining();
            words.insert(words.end(), extra.begin(), extra.end());
            if (json) words.push_back("--json");
            if (!local.empty()) words.insert(words.end(), {"--local", local});
            if (!ctl_type.empty()) words.insert(words.end(), {"--type", ctl_type});
            return tn::vnet::run_ctl(common.config, socket, words);
        }
        if (import->parsed()) return run_import(imp);
        if (genkey->parsed()) {
            auto secret = tn::relay::random_e2e_secret();
            std::cout << tn::relay::format_e2e_secret(secret) << std::endl;
            tn::relay::wipe(secret);
            return 0;
        }
        if (serve->parsed() || use->parsed()) {
            auto cfg = tn::vnet::quick_config(serve->parsed() ? qs : qu);
            if (common.check_config) return 0;
            return tn::vnet::run_vnet(std::move(cfg), log);
        }
        if (shell->parsed()) return tn::vnet::run_shell(common.config, socket);
        if (common.check_config) {
            tn::vnet::run_check(common.config);
            return 0;
        }
        return tn::vnet::run_vnet(common.config, log);
    });
}
