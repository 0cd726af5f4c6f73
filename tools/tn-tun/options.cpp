// Loading and validating tn-tun config files; every problem is reported with its FILE:LINE:COL.
#include "options.hpp"

#include <fstream>
#include <sstream>

#include "base/error.hpp"
#include "base/net_addr.hpp"
#include "base/runtime_dir.hpp"
#include "base/secret.hpp"
#include "base/strings.hpp"
#include "config/document.hpp"
#include "host_routes.hpp"

namespace tn::tuntool {
namespace {

std::filesystem::path relative_to(const std::filesystem::path& config, const std::string& p) {
    std::filesystem::path path(p);
    return path.is_absolute() ? path : config.parent_path() / path;
}

// Runs `parse` on a value and records its ParseError at the key instead of throwing.
template <class F>
void checked(const config::Table& t, std::string_view key, F&& parse) {
    try {
        parse();
    } catch (const ParseError& e) {
        t.error(key, e.what());
    }
}

bool check_key_file(const config::Table& t, std::string_view key, const std::filesystem::path& p, tun::Key& out) {
    try {
        out = read_private_key(p);
        return true;
    } catch (const Error& e) {
        t.error(key, e.what());
        return false;
    }
}

// `preshared_key_file`: optional; read like a private key, warned about like one.
void read_psk(const config::Table& t, const std::filesystem::path& config, tun::Key& out,
              std::vector<std::string>& warnings) {
    auto v = t.string("preshared_key_file");
    if (!v) return;
    auto path = relative_to(config, *v);
    if (check_key_file(t, "preshared_key_file", path, out) && out == tun::Key{})
        t.error("preshared_key_file", "a pre-shared key of 32 zero bytes is no key");
    if (auto w = secret_file_warning(path)) warnings.push_back(*w);
}

constexpr std::uint16_t ipv6_min_mtu = 1280;

// `dns` of [server] or a [[peer]]: IPv4 and IPv6 servers, the latter only with subnet6.
void parse_dns(const config::Table& t, const std::vector<std::string>& v, bool v6_ok, std::vector<std::uint32_t>& out4,
               std::vector<tun::Ip6>& out6) {
    if (v.size() > tun::max_push_dns) t.error("dns", "at most 8 DNS servers");
    for (auto& d : v)
        checked(t, "dns", [&] {
            if (!tun::is_ipv6_text(d)) return out4.push_back(tun::parse_ipv4(d));
            auto a = tun::parse_ipv6(d);
            if (!v6_ok) throw ParseError("IPv6 DNS server " + d + " needs subnet6 in [server]");
            out6.push_back(a);
        });
}

// Pushed `routes` / `push_routes`: IPv4 and IPv6 networks; an IPv6 one needs subnet6 and must not
// cover the server's own IPv6 address (clients would send the tunnel's datagrams into the tunnel).
void parse_pushed(const config::Table& t, std::string_view key, const std::vector<std::string>& v, bool v6_ok,
                  const std::optional<tun::Ip6>& listen6, std::vector<tun::Route>& out4,
                  std::vector<tun::Route6>& out6) {
    if (v.size() > tun::max_push_routes) t.error(key, "at most 64 routes");
    for (auto& r : v)
        checked(t, key, [&] {
            if (!tun::is_ipv6_text(r)) return out4.push_back(tun::parse_cidr(r));
            auto c = tun::parse_cidr6(r);
            if (!v6_ok) throw ParseError("IPv6 route " + r + " needs subnet6 in [server]");
            if (listen6 && tun::covers(c, *listen6))
                throw ParseError("IPv6 route " + r + " covers the server's own address " + tun::ipv6_str(*listen6) +
                                 ": clients would send the tunnel into itself");
            out6.push_back(c);
        });
}

// The IPv6 address `listen` names, if it names one (not the wildcard).
std::optional<tun::Ip6> listen_ipv6(const std::string& listen) {
    try {
        auto hp = parse_host_port(listen);
        if (tun::is_ipv6_text(hp.host) && hp.host != "::") return tun::parse_ipv6(hp.host);
    } catch (const ParseError&) {}
    return std::nullopt;
}

}  // namespace

tun::Key read_private_key(const std::filesystem::path& file) {
    std::ifstream f(file);
    if (!f) throw Error(ExitCode::config, "cannot read private key file " + file.string());
    std::string line;
    std::getline(f, line);
    // A key file is one line of 44 characters: reading more would only invite mistakes.
    try {
        auto k = tun::key_from_base64(std::string(trim(line)));
        tun::wipe(line.data(), line.size());
        return k;
    } catch (const ParseError& e) {
        tun::wipe(line.data(), line.size());
        throw Error(ExitCode::config, file.string() + ": " + e.what());
    }
}

namespace {
// `nat`: true for the default route's device, or a device name.
void parse_nat(const config::Table& s, ServerOptions& o) {
    if (s.is_boolean("nat")) {
        if (*s.boolean("nat")) o.nat = "";
    } else if (auto v = s.string("nat")) {
        if (v->empty() || v->size() > 15) s.error("nat", "an interface name has 1 to 15 characters");
        o.nat = *v;
    }
}

// `cipher` (PROTOCOL.tun.md §4, revision 5): whether this side offers (client) or chooses (server)
// AES-256-GCM. "auto" does where the CPU has AES-NI (libsodium's AES-GCM needs it); "aes-256-gcm"
// insists, so a CPU without it is a config error rather than a silent ChaCha20-Poly1305.
bool parse_cipher(const config::Table& t) {
    auto v = t.string("cipher");
    if (!v || *v == "auto") return tun::aes_gcm_available();
    if (*v == "aes-256-gcm") {
        if (!tun::aes_gcm_available()) t.error("cipher", "aes-256-gcm needs AES-NI, which this CPU does not have");
        return true;
    }
    if (*v != "chacha20-poly1305") t.error("cipher", "expected \"auto\", \"aes-256-gcm\" or \"chacha20-poly1305\"");
    return false;
}

// The [server] table's keys into `o` (its peers come after: they depend on subnet6 and listen).
void load_server_table(const config::Table& s, const std::filesystem::path& file, ServerOptions& o) {
    s.allow_only({"listen", "private_key_file", "tun", "subnet", "subnet6", "mtu", "dns", "routes", "nat", "cipher",
                  "handshake_rate"});
    if (auto v = s.string("listen")) {
        checked(s, "listen", [&] { parse_host_port(*v); });
        o.listen = *v;
    }
    if (auto v = s.require_string("private_key_file")) {
        o.private_key_file = relative_to(file, *v);
        check_key_file(s, "private_key_file", o.private_key_file, o.core.key.priv);
        if (auto w = secret_file_warning(o.private_key_file)) o.warnings.push_back(*w);
        o.core.key.pub = tun::public_key(o.core.key.priv);
    }
    if (auto v = s.string("tun")) {
        if (v->empty() || v->size() > 15) s.error("tun", "an interface name has 1 to 15 characters");
        o.tun = *v;
    }
    o.core.subnet = tun::parse_cidr("10.99.0.0/24");
    if (auto v = s.string("subnet"))
        checked(s, "subnet", [&] {
            o.core.subnet = tun::parse_cidr(*v);
            tun::Pool check(o.core.subnet);
        });
    if (auto v = s.string("subnet6"))
        checked(s, "subnet6", [&] {
            o.core.subnet6 = tun::parse_cidr6(*v);
            tun::check_subnet6(*o.core.subnet6, o.core.subnet);
        });
    const bool v6 = o.core.subnet6.has_value();
    const auto listen6 = listen_ipv6(o.listen);
    if (auto v = s.integer("mtu", 576, tun::max_inner_len)) o.core.mtu = static_cast<std::uint16_t>(*v);
    // IPv6 needs links of at least 1280 bytes: below, the kernel turns it off on the device.
    if (v6 && o.core.mtu < ipv6_min_mtu) s.error("mtu", "subnet6 needs an mtu of at least 1280 (IPv6's minimum)");
    if (auto v = s.strings("dns")) parse_dns(s, *v, v6, o.core.dns, o.core.dns6);
    if (auto v = s.strings("routes")) parse_pushed(s, "routes", *v, v6, listen6, o.core.routes, o.core.routes6);
    parse_nat(s, o);
    o.core.aes = parse_cipher(s);
    // The ceiling on Diffie-Hellman work (PROTOCOL.tun.md §6), burst half of it as by default: higher
    // brings many peers back sooner after a restart, at that much CPU under a flood.
    if (auto v = s.integer("handshake_rate", 10, 1000000)) {
        o.core.max_handshakes_per_second = static_cast<double>(*v);
        o.core.max_handshake_burst = static_cast<double>(*v) / 2;
    }
}

// A peer's own `routes` (the networks behind it): IPv4 ones cut to their network, IPv6 ones need subnet6.
void parse_peer_routes(const config::Table& p, const std::vector<std::string>& v, bool v6, tun::PeerConfig& pc) {
    for (auto& r : v)
        checked(p, "routes", [&] {
            if (tun::is_ipv6_text(r)) {
                auto c6 = tun::parse_cidr6(r);
                if (!v6) throw ParseError("IPv6 route " + r + " needs subnet6 in [server]");
                return pc.routes6.push_back(c6);
            }
            auto c = tun::parse_cidr(r);
            if (c.prefix < 32) c.addr &= c.prefix == 0 ? 0 : ~0u << (32 - c.prefix);  // the kernel wants a network
            pc.routes.push_back(c);
        });
}

// A [[peer]]; v6 and listen6 are the server's subnet6 and IPv6 listen address (its pushed routes must not cover it).
tun::PeerConfig load_peer(const config::Table& p, const std::filesystem::path& file, bool v6,
                          const std::optional<tun::Ip6>& listen6, std::vector<std::string>& warnings) {
    p.allow_only({"name", "public_key", "preshared_key_file", "address", "routes", "push_routes", "dns", "mtu"});
    tun::PeerConfig pc;
    if (auto v = p.require_string("name")) pc.name = *v;
    if (auto v = p.require_string("public_key"))
        checked(p, "public_key", [&] { pc.public_key = tun::key_from_base64(*v); });
    read_psk(p, file, pc.psk.key, warnings);
    if (auto v = p.string("address")) checked(p, "address", [&] { pc.address = tun::parse_ipv4(*v); });
    if (auto v = p.strings("routes")) parse_peer_routes(p, *v, v6, pc);
    if (auto v = p.strings("push_routes"))
        parse_pushed(p, "push_routes", *v, v6, listen6, pc.push_routes.emplace(), pc.push_routes6);
    if (auto v = p.strings("dns")) parse_dns(p, *v, v6, pc.dns.emplace(), pc.dns6);
    if (auto v = p.integer("mtu", 576, tun::max_inner_len)) pc.mtu = static_cast<std::uint16_t>(*v);
    if (v6 && pc.mtu && *pc.mtu < ipv6_min_mtu)
        p.error("mtu", "subnet6 needs an mtu of at least 1280 (IPv6's minimum)");
    return pc;
}
}  // namespace

ServerOptions load_server(const std::filesystem::path& file) {
    auto doc = config::Document::load_file(file);
    auto root = doc.root();
    root.allow_only({"server", "peer"});
    ServerOptions o;
    o.config_file = file;
    load_server_table(doc.require_table("server"), file, o);
    const bool v6 = o.core.subnet6.has_value();
    const auto listen6 = listen_ipv6(o.listen);
    for (auto& p : root.tables("peer")) o.core.peers.push_back(load_peer(p, file, v6, listen6, o.warnings));
    doc.finish();
    try {
        tun::ServerCore check(o.core);  // duplicate keys, static addresses outside the subnet
    } catch (const ParseError& e) {
        throw Error(ExitCode::config, file.string() + ": error: " + e.what());
    }
    return o;
}

ClientOptions load_client(const std::filesystem::path& file) {
    auto doc = config::Document::load_file(file);
    auto root = doc.root();
    root.allow_only({"client"});
    ClientOptions o;
    o.config_file = file;
    auto c = doc.require_table("client");
    c.allow_only({"server", "private_key_file", "server_public_key", "preshared_key_file", "tun", "apply_routes",
                  "default_route", "apply_dns", "fwmark", "persistent_keepalive", "on_up", "on_down", "cipher"});
    if (auto v = c.require_string("server")) {
        checked(c, "server", [&] { parse_host_port(*v); });
        o.server = *v;
    }
    if (auto v = c.require_string("private_key_file")) {
        o.private_key_file = relative_to(file, *v);
        check_key_file(c, "private_key_file", o.private_key_file, o.core.key.priv);
        if (auto w = secret_file_warning(o.private_key_file)) o.warnings.push_back(*w);
        o.core.key.pub = tun::public_key(o.core.key.priv);
    }
    if (auto v = c.require_string("server_public_key"))
        checked(c, "server_public_key", [&] { o.core.server_public = tun::key_from_base64(*v); });
    read_psk(c, file, o.core.psk.key, o.warnings);
    if (auto v = c.string("tun")) {
        if (v->empty() || v->size() > 15) c.error("tun", "an interface name has 1 to 15 characters");
        o.tun = *v;
    }
    if (auto v = c.boolean("apply_routes")) o.apply_routes = *v;
    if (auto v = c.boolean("default_route")) o.default_route = *v;
    if (auto v = c.boolean("apply_dns")) o.apply_dns = *v;
    if (auto v = c.integer("fwmark", 0, 2147483647)) {
        // 253-255 are the kernel's own tables (default, main, local): the mark names our table too.
        if (*v >= 253 && *v <= 255) c.error("fwmark", "253, 254 and 255 are the kernel's own routing tables");
        o.fwmark = static_cast<std::uint32_t>(*v);
    }
    if (o.default_route && !o.apply_routes) c.error("default_route", "default_route = true needs apply_routes = true");
    if (auto v = c.integer("persistent_keepalive", 0, 3600)) o.core.keepalive = std::chrono::seconds(*v);
    if (auto v = c.string("on_up")) o.on_up = *v;
    if (auto v = c.string("on_down")) o.on_down = *v;
    o.core.offer_aes = parse_cipher(c);
    doc.finish();
    return o;
}

std::filesystem::path control_socket_path(const std::string& tun) {
    return ensure_state_dir() / ("tn-tun-" + tun + ".sock");
}

std::filesystem::path client_control_socket_path(const std::string& tun) {
    return ensure_state_dir() / ("tn-tun-client-" + netns_id() + "-" + tun + ".sock");
}

StatusTarget status_target(const std::filesystem::path& file) {
    auto doc = config::Document::load_file(file);
    StatusTarget t;
    if (auto s = doc.root().table("server")) {
        if (auto v = s->string("tun")) t.tun = *v;
    } else if (auto c = doc.root().table("client")) {
        t.client = true;
        if (auto v = c->string("tun")) t.tun = *v;
    }
    return t;
}

}  // namespace tn::tuntool
