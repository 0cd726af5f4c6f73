// tn-route: the public relay. `tn-route [-c FILE]` runs it; `status` and `fingerprint` report on it.
#include <CLI/CLI.hpp>

#include <iostream>

#include "base/error.hpp"
#include "common/cli.hpp"
#include "route_runner.hpp"

namespace {

// -c FILE, else the first default location that exists; none is a usage error (64), not a route on
// 0.0.0.0 with no group.
std::string config_path(const std::string& given) {
    if (!given.empty()) return given;
    if (auto found = tn::route::find_route_config(); !found.empty()) return found;
    std::string where;
    for (const auto& p : tn::route::route_config_candidates()) where += (where.empty() ? "" : " or ") + p.string();
    throw tn::Error(tn::ExitCode::usage, "no config: pass -c FILE, or write " + where +
                                             " (usage: tn-route [-c FILE] [run|status|fingerprint]; see tn-route --help)");
}

}  // namespace

int main(int argc, char** argv) {
    tn::cli::CommonOptions common;
    CLI::App app("Public relay for tn-vnet agents: registry of services, groups, public ports.", "tn-route");
    tn::cli::add_common_options(app, common);
    app.fallthrough();
    bool json = false;
    auto* status = app.add_subcommand("status", "Show vnets, serves and links of the running route");
    status->add_flag("--json", json, "One JSON document instead of text");
    auto* fp = app.add_subcommand("fingerprint", "Print the SHA256 fingerprint of the route's certificate (made if absent)");
    app.add_subcommand("run", "Run the route (the default)");
    app.require_subcommand(0, 1);

    return tn::cli::run(app, common, argc, argv, [&](const tn::log::Logger& log) {
        auto cfg = tn::route::load_route_config(config_path(common.config));
        if (common.check_config) return 0;
        if (status->parsed()) return tn::route::print_status(cfg, json, std::cout);
        if (fp->parsed()) return tn::route::print_fingerprint(cfg, log, std::cout);
        return tn::route::run_route(std::move(cfg), log);
    });
}
