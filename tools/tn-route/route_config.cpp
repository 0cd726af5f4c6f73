// Loads tn-route's TOML config: [route], [[group]], [http], [dashboard], validated with key locations.
#include "route_config.hpp"

#include <arpa/inet.h>

#include <set>

#include "base/error.hpp"
#include "base/runtime_dir.hpp"
#include "base/secret_file.hpp"
#include "config/document.hpp"

namespace tn::route {

using relay::GroupClaims;
using relay::normalize_domain_pattern;
using relay::parse_port_range;

namespace {
bool loopback(const std::string& host) {
    return host == "127.0.0.1" || host == "::1" || host == "localhost" || host.rfind("127.", 0) == 0;
}

// proxy_bind is a bare IP address (remote_port listeners take their port from each serve).
void ip_check(const config::Table& t, std::string_view key, const std::string& v) {
    in6_addr a{};
    if (::inet_pton(AF_INET, v.c_str(), &a) != 1 && ::inet_pton(AF_INET6, v.c_str(), &a) != 1)
        t.error(key, "'" + v + "' is not an IP address (for example \"0.0.0.0\", \"127.0.0.1\" or \"::\")");
}

std::optional<HostPort> address(const config::Table& t, std::string_view key) {
    auto s = t.string(key);
    if (!s) return std::nullopt;
    try {
        return parse_host_port(*s);
    } catch (const ParseError& e) {
        t.error(key, e.what());
        return std::nullopt;
    }
}
}  // namespace

namespace {
// A path from the config, relative ones taken beside the config file.
std::filesystem::path beside(const std::filesystem::path& dir, const std::string& p) {
    std::filesystem::path f(p);
    return f.is_relative() ? dir / f : f;
}

void load_route_table(const config::Table& r, const std::filesystem::path& dir, RouteConfig& c) {
    r.allow_only({"listen", "tls", "cert", "key", "proxy_bind", "udp_idle_timeout", "udp_max_flows"});
    if (auto v = r.integer("udp_idle_timeout", 1, 86400)) c.udp_idle_timeout = static_cast<unsigned>(*v);
    if (auto v = r.integer("udp_max_flows", 1, 65536)) c.udp_max_flows = static_cast<std::size_t>(*v);
    if (auto a = address(r, "listen")) c.listen = *a;
    if (auto v = r.string("proxy_bind")) {
        ip_check(r, "proxy_bind", *v);
        c.proxy_bind = *v;
    }
    if (auto v = r.boolean("tls")) c.tls = *v;
    if (auto v = r.string("cert")) c.cert = beside(dir, *v);
    if (auto v = r.string("key")) c.key = beside(dir, *v);
    if (r.has("cert") != r.has("key")) r.error(r.has("cert") ? "cert" : "key", "set both cert and key, or neither");
    if (!c.tls && !loopback(c.listen.host))
        r.error("tls", "tls = false puts the control connections in clear: allowed only when listen is a loopback address (" +
                           c.listen.host + " is not)");
}

// The group's token, from token or token_file (nullopt after an error was reported).
std::optional<std::string> group_token(const config::Table& g, const std::filesystem::path& dir) {
    if (g.has("token") && g.has("token_file")) g.error("token_file", "set token or token_file, not both");
    if (auto f = g.string("token_file")) {
        try {
            return read_secret_file(beside(dir, *f)).expose();
        } catch (const ParseError& e) {
            g.error("token_file", e.what());
            return std::nullopt;
        }
    }
    return g.require_string("token");
}

GroupClaims group_claims(const config::Table& g) {
    GroupClaims claims;
    for (const auto& d : g.strings("domains").value_or(std::vector<std::string>{})) {
        try {
            claims.domains.push_back(normalize_domain_pattern(d));
        } catch (const ParseError& e) {
            g.error("domains", "domain '" + d + "': " + e.what());
        }
    }
    for (const auto& p : g.strings("ports", true).value_or(std::vector<std::string>{})) {
        try {
            claims.ports.push_back(parse_port_range(p));
        } catch (const ParseError& e) {
            g.error("ports", e.what());
        }
    }
    return claims;
}

void load_groups(const std::vector<config::Table>& tables, const std::filesystem::path& dir, RouteConfig& c) {
    std::set<std::string> names;
    for (const auto& g : tables) {
        g.allow_only({"name", "token", "token_file", "domains", "ports"});
        auto name = g.require_string("name");
        auto token = group_token(g, dir);
        auto claims = group_claims(g);
        if (!name || !token) continue;
        if (name->empty() || name->size() > 64) g.error("name", "group name must be 1-64 bytes");
        if (!names.insert(*name).second) g.error("name", "group '" + *name + "' is defined twice");
        if (token->size() < 8) g.error(g.has("token") ? "token" : "token_file", "token must be at least 8 characters (it is the group's password)");
        c.groups.push_back(Group{*name, Secret(*token), std::move(claims)});
    }
}

void load_http_table(const config::Table& h, RouteConfig& c) {
    h.allow_only({"listen", "listen_tls"});
    c.http_listen = address(h, "listen");
    c.https_listen = address(h, "listen_tls");
    if (!h.has("listen") && !h.has("listen_tls"))
        h.error("listen", "missing key 'listen' or 'listen_tls' (for example \"0.0.0.0:80\", \"0.0.0.0:443\")");
    if (c.http_listen && c.https_listen && *c.http_listen == *c.https_listen)
        h.error("listen_tls", "listen and listen_tls are the same address");
}

void load_dashboard_table(const config::Table& d, const std::filesystem::path& dir, RouteConfig& c) {
    d.allow_only({"listen", "user", "password", "password_file"});
    c.dashboard_listen = address(d, "listen");
    if (auto v = d.string("user")) c.dashboard_user = *v;
    if (d.has("password") && d.has("password_file")) d.error("password_file", "set password or password_file, not both");
    if (auto v = d.string("password")) c.dashboard_password = Secret(*v);
    if (auto f = d.string("password_file")) {
        try {
            c.dashboard_password = read_secret_file(beside(dir, *f));
        } catch (const ParseError& e) {
            d.error("password_file", e.what());
        }
    }
    if (c.dashboard_user.empty()) c.dashboard_user = "admin";
    if (c.dashboard_user.find(':') != std::string::npos) d.error("user", "a user name cannot contain ':' (HTTP basic auth)");
    if (!d.has("listen")) d.error("listen", "missing key 'listen' (for example \"127.0.0.1:7750\")");
    if (c.dashboard_listen && !loopback(c.dashboard_listen->host) && c.dashboard_password.empty())
        d.error("listen", "a dashboard on a non-loopback address needs a password");
}
}  // namespace

RouteConfig load_route_config(const std::string& path) {
    RouteConfig c;
    if (path.empty()) throw Error(ExitCode::usage, "tn-route needs a config file: -c FILE");
    c.source = path;
    auto dir = std::filesystem::absolute(path).parent_path();
    c.cert = dir / "tn-route.crt";
    c.key = dir / "tn-route.key";
    auto doc = config::Document::load_file(path);
    auto root = doc.root();
    root.allow_only({"route", "group", "http", "dashboard"});
    if (auto r = root.table("route")) load_route_table(*r, dir, c);
    load_groups(root.tables("group"), dir, c);
    if (auto h = root.table("http")) load_http_table(*h, c);
    if (auto d = root.table("dashboard")) load_dashboard_table(*d, dir, c);
    doc.finish();
    if (c.proxy_bind.empty()) c.proxy_bind = c.listen.host;
    return c;
}

std::vector<std::filesystem::path> route_config_candidates(const EnvLookup& env) {
    std::vector<std::filesystem::path> out;
    if (auto x = env("XDG_CONFIG_HOME"); x && std::filesystem::path(*x).is_absolute()) {
        out.push_back(std::filesystem::path(*x) / "tn" / "tn-route.toml");
    } else {
        try {
            out.push_back(home_dir(env) / ".config" / "tn" / "tn-route.toml");
        } catch (const Error&) {  // no home at all (a bare system account): /etc/tn only
        }
    }
    out.emplace_back("/etc/tn/tn-route.toml");
    return out;
}

std::string find_route_config(const EnvLookup& env) {
    for (const auto& p : route_config_candidates(env)) {
        std::error_code ec;
        if (std::filesystem::exists(p, ec)) return p.string();
    }
    return {};
}

std::filesystem::path route_socket_path(std::uint16_t port) {
    return state_dir_path() / ("tn-route-" + std::to_string(port) + ".sock");
}

}  // namespace tn::route
