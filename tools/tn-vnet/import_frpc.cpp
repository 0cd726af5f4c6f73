// frpc .ini/.toml to tn-vnet TOML: the server becomes [route], each tcp/http proxy a [[serve]] (tcp's
// remotePort its remote_port, http's customDomains its custom_domains); the rest is listed as comments.
#include "import_frpc.hpp"

#include <filesystem>
#include <map>
#include <set>

#include "base/error.hpp"
#include "config/document.hpp"

namespace tn::vnet {

using import::bad_input;
using import::TomlOut;

namespace {

using import::kNotInTn;

// What tn does not do (yet) with an frp proxy type, or "" when it carries it.
std::string type_gap(const std::string& type) {
    if (type == "tcp" || type == "udp" || type == "http" || type == "https") return "";
    return "frp's " + type + " proxies have no tn counterpart";
}

void write_serve(const FrpProxy& p, TomlOut& out) {
    out.array_table("serve");
    out.kv("name", p.name);
    out.kv("type", p.type == "udp" ? "udp" : "tcp", p.type == "http"    ? "frp's http proxy: the route picks it by Host"
                          : p.type == "https" ? "frp's https proxy: the route picks it by SNI ([http] listen_tls) and relays it unopened"
                                              : "");
    out.kv("ip", p.local_ip);
    out.kv("port", std::int64_t{*p.local_port});
    bool plain = p.type == "tcp" || p.type == "udp";  // a port of its own, TCP or UDP (frp's tcp and udp proxies)
    if (plain && p.remote_port) out.kv("remote_port", std::int64_t{*p.remote_port});
    else if (plain) out.comment("no remotePort: reached by its id through a [[use]], not on a public port");
    if (p.type == "http" || p.type == "https") {
        if (p.custom_domains.empty()) out.comment("no customDomains: add custom_domains for the route to pick it by Host or SNI");
        else out.kv("custom_domains", p.custom_domains);
    }
}

std::string vnet_name(const std::string& source) {
    auto stem = std::filesystem::path(source).stem().string();
    return stem.empty() || stem.size() > 64 ? "frpc" : stem;
}

std::vector<std::string> split_domains(const std::string& s) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at <= s.size()) {
        auto comma = s.find(',', at);
        auto part = s.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
        auto b = part.find_first_not_of(" \t");
        if (b != std::string::npos) out.push_back(part.substr(b, part.find_last_not_of(" \t") - b + 1));
        if (comma == std::string::npos) break;
        at = comma + 1;
    }
    return out;
}

}  // namespace

ImportResult write_frpc(const FrpClient& c, const std::string& source, const std::string& from, const ImportOptions& o,
                        const import::IniFile* ini) {
    TomlOut out;
    out.comment("tn-vnet config made by 'tn-vnet import' from " + source + " (" + from + ")");
    write_route_table(out, import::join_host_port(c.server_addr, c.server_port), o, c.token.has_value(),
                      "frpc had no token");
    out.table("vnet");
    out.kv("name", vnet_name(source));
    out.kv("group", "default", "the group 'tn-route import' makes from frps");
    std::set<std::string> names;
    std::map<std::string, std::string> domain_of;  // custom domain -> the proxy that has it
    for (const auto& p : c.proxies) {
        if (!names.insert(p.name).second) bad_input(source, "proxy '" + p.name + "' is defined twice");
        if (auto gap = type_gap(p.type); !gap.empty()) {
            out.blank();
            out.dropped("proxy '" + p.name + "' (type = " + p.type + ")", gap);
            continue;
        }
        // frp keeps http and https domains apart; a tn serve's custom_domains answer both Host and SNI.
        std::string taken;
        for (const auto& d : p.custom_domains)
            if (auto it = domain_of.find(d); it != domain_of.end() && taken.empty()) taken = d + "' is proxy '" + it->second;
        if (!taken.empty()) {
            out.blank();
            out.dropped("proxy '" + p.name + "' (type = " + p.type + ")",
                        "custom domain '" + taken + "' already: a tn serve's custom_domains are reached by Host and by SNI, so "
                        "one name is one serve (give the site its own name)");
            continue;
        }
        for (const auto& d : p.custom_domains) domain_of.emplace(d, p.name);
        if (!p.local_port) bad_input(source, "proxy '" + p.name + "' has no local port (frpc requires one)");
        write_serve(p, out);
    }
    out.blank();
    for (const auto& [what, why] : c.dropped) out.dropped(what, why);
    if (ini != nullptr) import::drop_unused(*ini, out, kNotInTn);
    return ImportResult{out.str(), c.token, from};
}

ImportResult import_frpc_ini(const import::IniFile& ini, const ImportOptions& o) {
    FrpClient c;
    auto port = [&](const import::IniSection& s, std::string_view key) -> std::optional<std::uint16_t> {
        auto v = s.take(key);
        if (!v) return std::nullopt;
        auto p = import::parse_port(*v);
        if (!p) bad_input(ini.source, "[" + s.name + "] " + std::string(key) + " = " + *v + ": not a port (1-65535)");
        return p;
    };
    if (const auto* common = ini.section("common")) {
        if (auto v = common->take("server_addr")) c.server_addr = *v;
        if (auto p = port(*common, "server_port")) c.server_port = *p;
        if (auto v = common->take("token"); v && !v->empty()) c.token = Secret(*v);
    }
    for (const auto& s : ini.sections) {
        if (s.name == "common" || s.name.empty()) continue;
        if (s.name.rfind("range:", 0) == 0) continue;  // left unused: listed as not carried over
        s.used = true;
        FrpProxy p;
        p.name = s.name;
        if (auto v = s.take("type")) p.type = *v;
        if (auto v = s.take("local_ip")) p.local_ip = *v;
        p.local_port = port(s, "local_port");
        p.remote_port = port(s, "remote_port");
        if (auto v = s.take("custom_domains")) p.custom_domains = split_domains(*v);
        c.proxies.push_back(std::move(p));
    }
    return write_frpc(c, ini.source, "frpc ini", o, &ini);
}

namespace {

void read_toml_proxy(const config::Table& t, FrpClient& c) {
    FrpProxy p;
    std::set<std::string> used{"name", "type", "localIP", "localPort", "remotePort", "customDomains"};
    if (auto v = t.require_string("name")) p.name = *v;
    if (auto v = t.string("type")) p.type = *v;
    if (auto v = t.string("localIP")) p.local_ip = *v;
    if (auto v = t.integer("localPort", 1, 65535)) p.local_port = static_cast<std::uint16_t>(*v);
    if (auto v = t.integer("remotePort", 0, 65535); v && *v > 0) p.remote_port = static_cast<std::uint16_t>(*v);
    if (auto v = t.strings("customDomains")) p.custom_domains = *v;
    for (const auto& k : t.keys())
        if (!used.count(k)) c.dropped.emplace_back("proxy '" + p.name + "': " + k, kNotInTn);
    c.proxies.push_back(std::move(p));
}

}  // namespace

ImportResult import_frpc_toml(std::string_view text, const std::string& source, const ImportOptions& o) {
    auto doc = import::parse_frp_toml(text, source);
    auto root = doc.root();
    FrpClient c;
    std::set<std::string> used{"serverAddr", "serverPort", "auth", "proxies"};
    if (auto v = root.string("serverAddr")) c.server_addr = *v;
    if (auto v = root.integer("serverPort", 1, 65535)) c.server_port = static_cast<std::uint16_t>(*v);
    import::read_frp_auth(root, c.token, c.dropped);
    for (const auto& t : root.tables("proxies")) read_toml_proxy(t, c);
    for (const auto& k : root.keys())
        if (!used.count(k)) c.dropped.emplace_back(k, k == "visitors" ? "tn uses [[use]] with a serve id instead" : kNotInTn);
    import::throw_diagnostics(doc);
    if (!root.has("serverAddr") && root.tables("proxies").empty())
        bad_input(source, "neither a vnet-v2 config.ini ([route], [vnet]) nor an frpc config (serverAddr, [[proxies]])");
    return write_frpc(c, source, "frpc toml", o, nullptr);
}

}  // namespace tn::vnet
