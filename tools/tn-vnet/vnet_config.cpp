// Loads tn-vnet's TOML config: [route], [vnet], [[serve]], [[use]], checked with key locations.
#include "vnet_config.hpp"

#include <algorithm>
#include <set>

#include "base/error.hpp"
#include "base/secret_file.hpp"
#include "config/document.hpp"
#include "relay/io_tls.hpp"
#include "relay/registry.hpp"

namespace tn::vnet {

// token_file: relative to the config's folder, like every path in a config.
Secret token_from_file(const config::Table& t, const std::string& config_path, const std::string& file) {
    std::filesystem::path p(file);
    if (p.is_relative()) p = std::filesystem::absolute(config_path).parent_path() / p;
    try {
        return read_secret_file(p);
    } catch (const ParseError& e) {
        t.error("token_file", e.what());
        return {};
    }
}

std::vector<HostPort> parse_routes(const std::vector<std::string>& list) {
    if (list.empty()) throw ParseError("list at least one route (\"HOST:PORT\")");
    if (list.size() > kMaxRoutes) throw ParseError("at most " + std::to_string(kMaxRoutes) + " routes");
    std::vector<HostPort> out;
    for (const auto& a : list) {
        HostPort hp;
        try {
            hp = parse_host_port(a);
        } catch (const ParseError& e) {
            throw ParseError("'" + a + "': " + e.what());
        }
        // Twice in the list would make a failover round try the same route again as if it were another.
        if (std::find(out.begin(), out.end(), hp) != out.end()) throw ParseError("'" + a + "' is listed twice");
        out.push_back(std::move(hp));
    }
    return out;
}

std::string routes_text(const std::vector<HostPort>& routes) {
    std::string s;
    for (const auto& r : routes) s += (s.empty() ? "" : ", ") + r.str();
    return s;
}

namespace {

// [route] address: "HOST:PORT" or a list of them in failover order.
void load_address(const config::Table& r, VnetConfig& c) {
    std::optional<std::vector<std::string>> list;
    if (r.is_array("address")) list = r.strings("address");
    else if (auto a = r.require_string("address")) list = std::vector<std::string>{*a};
    if (!list) return;
    try {
        c.routes = parse_routes(*list);
    } catch (const ParseError& e) {
        r.error("address", e.what());
    }
}

// [route]: where the route listens, how we prove ourselves to it, and how we know it is the one.
void load_route(const config::Table& r, const std::string& path, VnetConfig& c) {
    r.allow_only({"address", "token", "token_file", "fingerprint", "tls"});
    load_address(r, c);
    if (r.has("token") && r.has("token_file")) r.error("token_file", "set token or token_file, not both");
    if (auto f = r.string("token_file")) {
        c.token = token_from_file(r, path, *f);
    } else if (auto t = r.require_string("token")) {
        c.token = Secret(*t);
    }
    if (auto v = r.boolean("tls")) c.tls = *v;
    if (auto f = r.string("fingerprint")) {
        c.fingerprint = relay::normalize_fingerprint(*f);
        if (c.fingerprint.empty()) r.error("fingerprint", "not a SHA256 fingerprint (64 hex digits, as 'tn-route fingerprint' prints)");
    } else if (c.tls) {
        r.error("fingerprint", "TLS needs the route's fingerprint pinned: run 'tn-route fingerprint' on the route "
                               "and set it here (or set tls = false on both ends)");
    }
}

// [vnet] e2e_secret / e2e_secret_file: 32 random bytes in base64, nothing weaker (a route sees every
// handshake and could try a passphrase offline), so the error names the generator.
void load_e2e(const config::Table& v, const std::string& path, VnetConfig& c) {
    if (v.has("e2e_secret") && v.has("e2e_secret_file")) return v.error("e2e_secret_file", "set e2e_secret or e2e_secret_file, not both");
    const char* key = v.has("e2e_secret") ? "e2e_secret" : "e2e_secret_file";
    Secret text;
    if (auto f = v.string("e2e_secret_file")) {
        std::filesystem::path p(*f);
        if (p.is_relative()) p = std::filesystem::absolute(path).parent_path() / p;
        c.e2e_secret_path = p.string();
        try {
            text = read_secret_file(p);
        } catch (const ParseError& e) {
            return v.error(key, e.what());
        }
    } else if (auto t = v.string("e2e_secret")) {
        text = Secret(*t);
    } else {
        return;
    }
    c.e2e_secret = relay::parse_e2e_secret(text.expose());
    if (!c.e2e_secret)
        v.error(key, "not an end-to-end secret (32 random bytes in base64, 44 characters): make one with 'tn-vnet genkey' "
                     "and give both vnets the same");
}

// [vnet]: who we are in which group, and what starts and what is allowed.
void load_vnet(const config::Table& v, const std::string& path, VnetConfig& c) {
    v.allow_only({"name", "group", "terminal", "start_serve", "start_use", "allow_unserve", "unserve_remote", "unserve_num", "link_pool",
                  "e2e_secret", "e2e_secret_file"});
    load_e2e(v, path, c);
    if (auto s = v.string("name")) c.name = *s;
    if (auto s = v.string("group")) c.group = *s;
    if (c.name.empty() || c.name.size() > 64) v.error("name", "name must be 1-64 bytes");
    if (c.group.empty() || c.group.size() > 64) v.error("group", "group must be 1-64 bytes");
    if (auto b = v.boolean("terminal")) c.terminal = *b;
    if (auto b = v.boolean("start_serve")) c.start_serve = *b;
    if (auto b = v.boolean("start_use")) c.start_use = *b;
    if (auto b = v.boolean("allow_unserve")) c.allow_unserve = *b;
    if (auto b = v.boolean("unserve_remote")) c.unserve_remote = *b;
    if (auto n = v.integer("unserve_num", 0, 499)) c.unserve_num = static_cast<int>(*n);
    if (auto n = v.integer("link_pool", 0, 16)) c.link_pool = static_cast<std::size_t>(*n);
}

// A serve's custom_domains, normalised; each bad one is reported on its own.
std::vector<std::string> load_custom_domains(const config::Table& t, const std::vector<std::string>& list) {
    if (list.size() > relay::kMaxDomains)
        t.error("custom_domains", "at most " + std::to_string(relay::kMaxDomains) + " custom domains per serve");
    std::vector<std::string> out;
    for (const auto& d : list) {
        try {
            out.push_back(relay::normalize_domain(d));
        } catch (const ParseError& e) {
            t.error("custom_domains", "'" + d + "': " + e.what());
        }
    }
    return out;
}

// A serve's or use's type: what its links carry (TCP streams, or UDP datagrams framed).
std::string load_type(const config::Table& t, const std::string& v) {
    if (v != "tcp" && v != "udp") t.error("type", "type must be \"tcp\" or \"udp\", not '" + v + "'");
    return v;
}

// One [[serve]]; `names` holds the serve and use names seen so far (a name is defined once).
ServeCfg load_serve(const config::Table& t, std::set<std::string>& names) {
    t.allow_only({"name", "id", "type", "ip", "port", "info", "active", "remote_port", "custom_domains"});
    ServeCfg s;
    if (auto v = t.require_string("name")) s.name = *v;
    if (auto v = t.integer("id", 0, 999)) s.id = static_cast<std::uint16_t>(*v);
    if (auto v = t.string("type")) s.type = load_type(t, *v);
    if (auto v = t.string("ip")) s.ip = *v;
    if (auto v = t.integer("port", 1, 65535)) s.port = static_cast<std::uint16_t>(*v);
    else if (!t.has("port")) t.error("port", "missing key 'port'");
    if (auto v = t.string("info")) s.info = *v;
    if (auto v = t.boolean("active")) s.active = *v;
    if (auto v = t.integer("remote_port", 1, 65535)) s.remote_port = static_cast<std::uint16_t>(*v);
    if (auto v = t.strings("custom_domains")) s.custom_domains = load_custom_domains(t, *v);
    if (s.type == "udp" && !s.custom_domains.empty()) t.error("custom_domains", "a udp serve has no custom_domains (HTTP vhosts are TCP)");
    if (s.name.size() > 64) t.error("name", "name must be at most 64 bytes");
    if (!s.name.empty() && !names.insert("serve:" + s.name).second) t.error("name", "serve '" + s.name + "' is defined twice");
    return s;
}

// One [[use]]; unnamed, it is "useID".
UseCfg load_use(const config::Table& t, std::set<std::string>& names) {
    t.allow_only({"name", "id", "ip", "port", "active", "type", "udp_idle_timeout", "udp_max_flows"});
    UseCfg u;
    if (auto v = t.string("name")) u.name = *v;
    if (auto v = t.integer("id", 1, 999)) u.id = static_cast<std::uint16_t>(*v);
    else if (!t.has("id")) t.error("id", "missing key 'id' (the serve id to use, 1-999)");
    if (auto v = t.string("ip")) u.ip = *v;
    if (auto v = t.integer("port", 1, 65535)) u.port = static_cast<std::uint16_t>(*v);
    if (auto v = t.boolean("active")) u.active = *v;
    if (auto v = t.string("type")) u.type = load_type(t, *v);
    if (auto v = t.integer("udp_idle_timeout", 1, 86400)) u.udp_idle_timeout = static_cast<std::uint32_t>(*v);
    if (auto v = t.integer("udp_max_flows", 1, 65536)) u.udp_max_flows = static_cast<std::size_t>(*v);
    if (u.type != "udp" && (t.has("udp_idle_timeout") || t.has("udp_max_flows")))
        t.error(t.has("udp_idle_timeout") ? "udp_idle_timeout" : "udp_max_flows", "only a use with type = \"udp\" has flows");
    if (u.name.empty()) u.name = "use" + std::to_string(u.id);
    if (!names.insert("use:" + u.name).second) t.error("name", "use '" + u.name + "' is defined twice");
    return u;
}

}  // namespace

VnetConfig load_vnet_config(const std::string& path) {
    if (path.empty()) throw Error(ExitCode::usage, "tn-vnet needs a config file: -c FILE");
    VnetConfig c;
    c.source = path;
    auto doc = config::Document::load_file(path);
    auto root = doc.root();
    root.allow_only({"route", "vnet", "serve", "use"});
    if (auto r = root.table("route")) load_route(*r, path, c);
    else root.error("route", "missing [route] table (address, token, fingerprint)");
    if (auto v = root.table("vnet")) load_vnet(*v, path, c);
    std::set<std::string> names;
    for (const auto& t : root.tables("serve")) {
        c.serves.push_back(load_serve(t, names));
        // The route is the using end of a remote_port or vhost client's link: it cannot run the
        // handshake (it has no secret, by design), so such a serve could never carry a byte.
        if (c.e2e_secret && c.serves.back().remote_port)
            t.error("remote_port", "an end-to-end vnet (e2e_secret) cannot serve a remote_port: the route would be the link's using end");
        if (c.e2e_secret && !c.serves.back().custom_domains.empty())
            t.error("custom_domains", "an end-to-end vnet (e2e_secret) cannot serve custom_domains: the route would be the link's using end");
    }
    for (const auto& t : root.tables("use")) c.uses.push_back(load_use(t, names));
    doc.finish();
    return c;
}

}  // namespace tn::vnet
