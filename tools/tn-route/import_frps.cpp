// frps (and vnet-v2 route) configs to tn-route TOML: bindAddr:bindPort becomes [route] listen,
// vhostHTTPPort [http] listen, vhostHTTPSPort its listen_tls, webServer.* [dashboard], auth.token and allowPorts the one [[group]]; the rest is
// listed as comments. Secrets never reach stdout: they go to files the caller writes (--token-out,
// --password-out), or the output says how to set them.
#include "import_frps.hpp"

#include <set>

#include "base/error.hpp"
#include "config/document.hpp"
#include "relay/claims.hpp"

namespace tn::route {

using import::bad_input;
using import::TomlOut;

namespace {

using import::kNotInTn;

struct FrpServer {
    std::string bind_addr = "0.0.0.0";
    std::uint16_t bind_port = 7000;
    std::string proxy_bind;
    std::optional<std::uint16_t> http_port, https_port, dashboard_port;
    std::string dashboard_addr;
    std::string dashboard_user;
    std::optional<Secret> token, password;
    std::optional<std::vector<std::string>> allow_ports;
    std::string subdomain_host;
    std::vector<std::pair<std::string, std::string>> dropped;
};

void write_group(const FrpServer& s, const std::string& source, const ImportOptions& o, bool vnet_v2, TomlOut& out) {
    out.array_table("group");
    out.kv("name", o.group, vnet_v2 ? "vnet-v2 groups need no declaring; tn's do: one [[group]] each (--group NAME)"
                                    : "frps has no groups: 'tn-vnet import' puts every frpc in \"default\"");
    if (!o.token_file.empty()) {
        out.kv("token_file", o.token_file, o.token_out ? "written by --token-out, mode 0600" : "");
        if (s.token && !o.token_out) out.dropped("the source's token", "--token-file names the token to use instead");
    } else {
        out.comment("token_file = \"/etc/tn/" + o.group + ".token\"");
        out.comment(s.token ? "not carried over: the token (tn reads tokens from 0600 files, never from printed configs: "
                              "rerun with --token-out FILE to write it there)"
                            : std::string(vnet_v2 ? "vnet-v2 has no password" : "frps had no token") +
                                  ": tn requires one per group: rerun with --token-out FILE to make one, or set token_file");
    }
    if (vnet_v2) return;
    if (s.allow_ports) {
        out.kv("ports", *s.allow_ports);
    } else {
        out.kv("ports", std::vector<std::string>{"1-65535"}, "frps allowed any remotePort (no allowPorts): narrow this");
    }
    std::vector<std::string> domains = o.domains;
    if (!s.subdomain_host.empty()) domains.push_back("*." + s.subdomain_host);
    for (const auto& d : domains) {
        try {
            (void)relay::normalize_domain_pattern(d);
        } catch (const ParseError& e) {
            bad_input(source, "domain '" + d + "': " + e.what());
        }
    }
    if (!domains.empty()) out.kv("domains", domains);
    else if (s.http_port || s.https_port)
        out.comment("domains = [\"www.example.com\"]  # frps let any client take any customDomains; tn lets a group take "
                    "only these: list yours (or rerun with --domain)");
}

void write_dashboard(const FrpServer& s, const ImportOptions& o, TomlOut& out) {
    out.table("dashboard");
    out.kv("listen", import::join_host_port(s.dashboard_addr, *s.dashboard_port));
    if (!s.dashboard_user.empty()) out.kv("user", s.dashboard_user);
    if (!o.password_file.empty()) {
        out.kv("password_file", o.password_file, o.password_out ? "written by --password-out, mode 0600" : "");
    } else {
        out.comment("password_file = \"/etc/tn/dashboard.password\"");
        out.comment(s.password ? "not carried over: the dashboard password (never printed: rerun with --password-out FILE)"
                               : "frps had no dashboard password: a dashboard off loopback needs one (--password-out FILE makes one)");
    }
}

ImportResult write_route(const FrpServer& s, const std::string& source, const std::string& from, const ImportOptions& o,
                         const import::IniFile* ini) {
    bool vnet_v2 = from == "vnet-v2 route";
    TomlOut out;
    out.comment("tn-route config made by 'tn-route import' from " + source + " (" + from + ")");
    out.table("route");
    out.kv("listen", import::join_host_port(s.bind_addr, s.bind_port));
    if (!s.proxy_bind.empty()) out.kv("proxy_bind", s.proxy_bind);
    write_group(s, source, o, vnet_v2, out);
    if (s.http_port || s.https_port) out.table("http");
    if (s.http_port) out.kv("listen", import::join_host_port(s.bind_addr, *s.http_port));
    if (s.https_port) out.kv("listen_tls", import::join_host_port(s.bind_addr, *s.https_port), "HTTPS by SNI, relayed unopened");
    if (s.dashboard_port) write_dashboard(s, o, out);
    out.blank();
    for (const auto& [what, why] : s.dropped) out.dropped(what, why);
    if (ini != nullptr) import::drop_unused(*ini, out, kNotInTn);
    return ImportResult{out.str(), s.token, s.password, from};
}

std::vector<std::string> port_ranges(const std::string& source, const std::string& list) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at <= list.size()) {
        auto comma = list.find(',', at);
        auto part = list.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
        auto b = part.find_first_not_of(" \t");
        if (b != std::string::npos) {
            part = part.substr(b, part.find_last_not_of(" \t") - b + 1);
            try {
                (void)relay::parse_port_range(part);
            } catch (const ParseError& e) {
                bad_input(source, std::string("allow_ports: ") + e.what());
            }
            out.push_back(part);
        }
        if (comma == std::string::npos) break;
        at = comma + 1;
    }
    return out;
}

ImportResult import_ini(const import::IniFile& ini, const ImportOptions& o) {
    FrpServer s;
    if (const auto* route = ini.section("route")) {  // vnet-v2's route: [route] ip/port, nothing else
        auto ip = route->take("ip"), port = route->take("port");
        if (!ip || !port) bad_input(ini.source, "[route] needs ip and port (vnet-v2 requires both)");
        auto p = import::parse_port(import::strip_inline_comment(*port));
        if (!p) bad_input(ini.source, "[route] port = " + *port + ": not a port (1-65535)");
        s.bind_addr = import::strip_inline_comment(*ip);
        s.bind_port = *p;
        return write_route(s, ini.source, "vnet-v2 route", o, &ini);
    }
    const auto* c = ini.section("common");
    if (c == nullptr) bad_input(ini.source, "neither an frps config ([common]) nor a vnet-v2 route config.ini ([route])");
    auto port = [&](std::string_view key) -> std::optional<std::uint16_t> {
        auto v = c->take(key);
        if (!v) return std::nullopt;
        auto p = import::parse_port(*v);
        if (!p) bad_input(ini.source, "[common] " + std::string(key) + " = " + *v + ": not a port (1-65535)");
        return p;
    };
    if (auto v = c->take("bind_addr")) s.bind_addr = *v;
    if (auto p = port("bind_port")) s.bind_port = *p;
    if (auto v = c->take("proxy_bind_addr")) s.proxy_bind = *v;
    s.http_port = port("vhost_http_port");
    s.https_port = port("vhost_https_port");
    s.dashboard_port = port("dashboard_port");
    s.dashboard_addr = c->take("dashboard_addr").value_or("0.0.0.0");  // frps's INI default
    s.dashboard_user = c->take("dashboard_user").value_or("");
    if (auto v = c->take("dashboard_pwd"); v && !v->empty()) s.password = Secret(*v);
    if (auto v = c->take("token"); v && !v->empty()) s.token = Secret(*v);
    if (auto v = c->take("allow_ports")) s.allow_ports = port_ranges(ini.source, *v);
    if (auto v = c->take("subdomain_host")) s.subdomain_host = *v;
    return write_route(s, ini.source, "frps ini", o, &ini);
}

void read_toml_ports(const config::Table& root, FrpServer& s) {
    auto ranges = root.tables("allowPorts");
    if (!root.has("allowPorts")) return;
    s.allow_ports.emplace();
    for (const auto& t : ranges) {
        auto single = t.integer("single", 1, 65535);
        auto lo = t.integer("start", 1, 65535), hi = t.integer("end", 1, 65535);
        if (single) s.allow_ports->push_back(std::to_string(*single));
        else if (lo && hi && *lo <= *hi) s.allow_ports->push_back(std::to_string(*lo) + "-" + std::to_string(*hi));
        else if (lo && hi) t.error("end", "ends before it starts");
        else t.error("start", "needs single, or start and end");
    }
}

ImportResult import_toml(std::string_view text, const std::string& source, const ImportOptions& o) {
    auto doc = import::parse_frp_toml(text, source);
    auto root = doc.root();
    FrpServer s;
    std::set<std::string> used{"bindAddr", "bindPort", "proxyBindAddr", "vhostHTTPPort", "vhostHTTPSPort", "webServer",
                               "auth", "allowPorts", "subDomainHost"};
    auto port = [&](const config::Table& t, std::string_view k) -> std::optional<std::uint16_t> {
        if (auto v = t.integer(k, 1, 65535)) return static_cast<std::uint16_t>(*v);
        return std::nullopt;
    };
    if (auto v = root.string("bindAddr")) s.bind_addr = *v;
    if (auto p = port(root, "bindPort")) s.bind_port = *p;
    if (auto v = root.string("proxyBindAddr")) s.proxy_bind = *v;
    s.http_port = port(root, "vhostHTTPPort");
    s.https_port = port(root, "vhostHTTPSPort");
    if (auto w = root.table("webServer")) {
        s.dashboard_port = port(*w, "port");
        s.dashboard_addr = w->string("addr").value_or("127.0.0.1");  // frps's TOML default
        s.dashboard_user = w->string("user").value_or("");
        if (auto v = w->string("password"); v && !v->empty()) s.password = Secret(*v);
        for (const auto& k : w->keys())
            if (k != "port" && k != "addr" && k != "user" && k != "password") s.dropped.emplace_back("webServer." + k, kNotInTn);
    }
    import::read_frp_auth(root, s.token, s.dropped);
    bool any = false;
    for (const auto& k : used) any = any || root.has(k);
    if (!any) bad_input(source, "no frps setting (bindPort, vhostHTTPPort, webServer, auth, ...): not an frps config");
    read_toml_ports(root, s);
    if (auto v = root.string("subDomainHost")) s.subdomain_host = *v;
    for (const auto& k : root.keys())
        if (!used.count(k)) s.dropped.emplace_back(k, kNotInTn);
    import::throw_diagnostics(doc);
    return write_route(s, source, "frps toml", o, nullptr);
}

}  // namespace

ImportResult import_route_text(std::string_view text, const std::string& source, const ImportOptions& o) {
    bool toml = source.size() >= 5 && source.compare(source.size() - 5, 5, ".toml") == 0;
    if (!toml) {
        std::optional<import::IniFile> ini;
        try {
            ini = import::parse_ini(text, source);
        } catch (const Error&) {
            try {  // frps TOML under another name
                return import_toml(text, source, o);
            } catch (const Error&) {
            }
            throw;
        }
        if (ini->sections.empty() || !ini->sections.front().name.empty()) return import_ini(*ini, o);
    }
    return import_toml(text, source, o);
}

}  // namespace tn::route
