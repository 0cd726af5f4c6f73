// Flags to a VnetConfig: the same defaults and limits as the TOML loader, errors as usage (64).
#include "quick_start.hpp"

#include "base/error.hpp"
#include "base/secret_file.hpp"
#include "relay/io_tls.hpp"
#include "relay/registry.hpp"

namespace tn::vnet {

namespace {
[[noreturn]] void usage(const std::string& what) { throw Error(ExitCode::usage, what); }
}  // namespace

VnetConfig quick_config(const QuickArgs& a) {
    VnetConfig c;
    const char* verb = a.serve ? "serve" : "use";
    try {
        c.routes = parse_routes(a.routes);
    } catch (const ParseError& e) {
        usage(std::string("--route: ") + e.what());
    }
    try {
        c.token = read_secret_file(a.token_file);
    } catch (const ParseError& e) {
        usage(std::string("--token-file: ") + e.what());
    }
    c.fingerprint = relay::normalize_fingerprint(a.fingerprint);
    if (c.fingerprint.empty()) usage("--fingerprint: not a SHA256 fingerprint (as 'tn-route fingerprint' prints)");
    if (a.group.empty() || a.group.size() > 64) usage("--group: 1-64 bytes");
    if (a.port < 1 || a.port > 65535) usage("--port: 1-65535");
    if (a.id < (a.serve ? 0 : 1) || a.id > 999) usage(a.serve ? "--id: 1-999 (or none: the route assigns one)" : "--id: the serve id to use, 1-999");
    c.group = a.group;
    std::string tag = a.id > 0 ? std::to_string(a.id) : "p" + std::to_string(a.port);
    c.name = a.name.empty() ? std::string(verb) + "-" + tag : a.name;
    if (c.name.size() > 64) usage("--name: at most 64 bytes");
    if (a.serve) {
        ServeCfg s;
        s.name = c.name;
        s.id = static_cast<std::uint16_t>(a.id);
        s.ip = a.ip;
        s.port = static_cast<std::uint16_t>(a.port);
        s.type = a.type;
        if (a.type == "udp" && !a.domains.empty()) usage("--domain: a udp serve has none (HTTP vhosts are TCP)");
        if (a.remote_port < 0 || a.remote_port > 65535) usage("--remote-port: 1-65535");
        s.remote_port = static_cast<std::uint16_t>(a.remote_port);
        if (a.domains.size() > relay::kMaxDomains) usage("--domain: at most " + std::to_string(relay::kMaxDomains));
        for (const auto& d : a.domains) {
            try {
                s.custom_domains.push_back(relay::normalize_domain(d));
            } catch (const ParseError& e) {
                usage("--domain '" + d + "': " + e.what());
            }
        }
        c.serves.push_back(std::move(s));
    } else {
        if (a.remote_port != 0 || !a.domains.empty()) usage("--remote-port and --domain belong to 'tn-vnet serve'");
        UseCfg u;
        u.name = c.name;
        u.id = static_cast<std::uint16_t>(a.id);
        u.ip = a.ip;
        u.port = static_cast<std::uint16_t>(a.port);
        u.type = a.type;
        c.uses.push_back(std::move(u));
    }
    c.source = std::string("tn-vnet ") + verb;
    return c;
}

}  // namespace tn::vnet
