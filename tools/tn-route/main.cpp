// tn-route: the public relay. `tn-route [-c FILE]` runs it; `status` and `fingerprint` report on it.
#include <CLI/CLI.hpp>

#include <sys/random.h>

#include <filesystem>
#include <iostream>

#include "base/error.hpp"
#include "base/secret_file.hpp"
#include "common/cli.hpp"
#include "import_frps.hpp"
#include "relay/claims.hpp"
#include "route_runner.hpp"

namespace {

struct ImportArgs {
    std::string file, group = "default", token_out, token_file, password_out;
    std::vector<std::string> domains;
};

// A token or password made up for a source that had none: 24 random bytes in hex.
tn::Secret random_secret() {
    unsigned char b[24];
    if (::getrandom(b, sizeof b, 0) != static_cast<ssize_t>(sizeof b)) throw tn::Error(tn::ExitCode::io, "getrandom failed");
    static const char* hex = "0123456789abcdef";
    std::string s;
    for (unsigned char c : b) s += {hex[c >> 4], hex[c & 15]};
    return tn::Secret(std::move(s));
}

// `tn-route import FILE`: the TOML on stdout once the whole file converted; the token and dashboard
// password (the source's, or new random ones) only in new 0600 files, when asked.
int run_import(const ImportArgs& a) {
    if (!a.token_out.empty() && !a.token_file.empty()) throw tn::Error(tn::ExitCode::usage, "--token-out and --token-file exclude each other");
    for (const auto& d : a.domains) {
        try {
            (void)tn::relay::normalize_domain_pattern(d);
        } catch (const tn::ParseError& e) {
            throw tn::Error(tn::ExitCode::usage, "--domain '" + d + "': " + e.what());
        }
    }
    if (a.group.empty() || a.group.size() > 64) throw tn::Error(tn::ExitCode::usage, "--group: 1-64 bytes");
    tn::route::ImportOptions o;
    o.group = a.group;
    o.domains = a.domains;
    if (!a.token_file.empty()) o.token_file = std::filesystem::absolute(a.token_file).string();
    if (!a.token_out.empty()) o.token_file = std::filesystem::absolute(a.token_out).string(), o.token_out = true;
    if (!a.password_out.empty()) o.password_file = std::filesystem::absolute(a.password_out).string(), o.password_out = true;
    auto r = tn::route::import_route_text(tn::import::read_source(a.file), a.file, o);
    if (o.token_out) tn::write_secret_file(a.token_out, r.token ? *r.token : random_secret());
    if (o.password_out) tn::write_secret_file(a.password_out, r.password ? *r.password : random_secret());
    std::cout << r.toml << std::flush;
    return 0;
}

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
    auto* json_flag = status->add_flag("--json", json, "One JSON document instead of text");
    tn::route::StatusPage page;
    status->add_option("--limit", page.limit, "With --json: at most N vnets (a page; see next_after)")
        ->check(CLI::Range(1u, 1000000u))->needs(json_flag);
    status->add_option("--after", page.after, "With --limit: the vnets whose id is above ID (the last page's next_after)")
        ->needs("--limit");
    auto* fp = app.add_subcommand("fingerprint", "Print the SHA256 fingerprint of the route's certificate (made if absent)");
    app.add_subcommand("run", "Run the route (the default)");
    ImportArgs imp;
    auto* import = app.add_subcommand("import", "Print a tn-route config made from an frps .ini/.toml or a vnet-v2 route config.ini");
    import->add_option("file", imp.file, "The config to convert")->required();
    import->add_option("--group", imp.group, "Name of the one group it makes (default: default)");
    import->add_option("--token-out", imp.token_out, "Write the group's token (the file's, else a new one) to this new file (0600)");
    import->add_option("--token-file", imp.token_file, "Refer to this token file for the group");
    import->add_option("--password-out", imp.password_out, "Write the dashboard password (the file's, else a new one) to this new file (0600)");
    import->add_option("--domain", imp.domains, "A custom domain (or *.zone) the group may claim; repeatable");
    app.require_subcommand(0, 1);

    return tn::cli::run(app, common, argc, argv, [&](const tn::log::Logger& log) {
        if (import->parsed()) return run_import(imp);
        auto cfg = tn::route::load_route_config(config_path(common.config));
        if (common.check_config) return 0;
        if (status->parsed()) return tn::route::print_status(cfg, json, std::cout, page);
        if (fp->parsed()) return tn::route::print_fingerprint(cfg, log, std::cout);
        return tn::route::run_route(std::move(cfg), log);
    });
}
