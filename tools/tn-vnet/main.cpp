// tn-vnet: the agent on a private host. `tn-vnet -c FILE` runs it; `ctl` and `shell` talk to it.
#include <CLI/CLI.hpp>

#include "common/cli.hpp"
#include "vnet_runner.hpp"

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
    ctl->add_option("command", words, "show serve|use|serves|vnet|vnets, ping, unserve VNETID [IP:]PORT, ...");
    ctl->prefix_command(false);
    ctl->allow_extras();
    auto* shell = app.add_subcommand("shell", "The same commands interactively, against the running vnet");
    shell->add_option("--socket", socket, "Control socket (default: from -c FILE's vnet name)");
    app.require_subcommand(0, 1);

    return tn::cli::run(app, common, argc, argv, [&](const tn::log::Logger& log) {
        if (ctl->parsed()) {
            auto extra = ctl->remaining();
            words.insert(words.end(), extra.begin(), extra.end());
            if (json) words.push_back("--json");
            if (!local.empty()) words.insert(words.end(), {"--local", local});
            return tn::vnet::run_ctl(common.config, socket, words);
        }
        if (shell->parsed()) return tn::vnet::run_shell(common.config, socket);
        if (common.check_config) {
            tn::vnet::run_check(common.config);
            return 0;
        }
        return tn::vnet::run_vnet(common.config, log);
    });
}
