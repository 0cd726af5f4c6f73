// vnet-v2 config.ini to tn-vnet TOML: the keys keep their meaning (SPEC §3 took them from vnet-v2);
// values lose go-ini's inline comments; what tn has no key for is listed as a comment.
#include "import_vnet.hpp"

#include <set>

#include "base/error.hpp"
#include "import_frpc.hpp"

namespace tn::vnet {

using import::bad_input;
using import::IniFile;
using import::IniSection;
using import::strip_inline_comment;
using import::TomlOut;

void write_route_table(TomlOut& out, const std::string& address, const ImportOptions& o, bool source_has_token,
                       const std::string& no_token_why) {
    out.table("route");
    out.kv("address", address);
    if (!o.token_file.empty()) {
        out.kv("token_file", o.token_file, o.token_out ? "written by --token-out, mode 0600" : "");
        if (source_has_token && !o.token_out) out.dropped("the source's token", "--token-file names the token to use instead");
    } else if (source_has_token) {
        out.comment("token_file = \"/etc/tn/route.token\"");
        out.dropped("the token", "tn reads tokens from 0600 files, never from printed configs: rerun with "
                                 "--token-out FILE to write it there, or put it in a file yourself and set token_file");
    } else {
        out.comment("token_file = \"/etc/tn/route.token\"");
        out.comment(no_token_why + ": tn needs the token of this vnet's group on the route: put it in a 0600 file "
                    "and set token_file (or rerun with --token-file FILE)");
    }
    if (!o.fingerprint.empty()) {
        out.kv("fingerprint", o.fingerprint);
    } else {
        out.comment("fingerprint = \"sha256:...\"");
        out.comment("the route's certificate: run 'tn-route fingerprint' there and set it here (or rerun with --fingerprint)");
    }
}

namespace {

std::string value(const IniSection& s, std::string_view key) { return strip_inline_comment(*s.take(key)); }

void copy_bool(const IniFile& ini, const IniSection& s, std::string_view from, std::string_view to, TomlOut& out) {
    if (!s.take(from)) return;
    auto v = value(s, from);
    auto b = import::parse_bool(v);
    if (!b) bad_input(ini.source, "[" + s.name + "] " + std::string(from) + " = " + v + ": not a boolean (true or false)");
    out.kv(to, *b);
}

std::uint16_t port_of(const IniFile& ini, const IniSection& s, std::string_view key) {
    auto v = value(s, key);
    auto p = import::parse_port(v);
    if (!p) bad_input(ini.source, "[" + s.name + "] " + std::string(key) + " = " + v + ": not a port (1-65535)");
    return *p;
}

// serveid: up to three digits; 0 (vnet-v2 writes 000) is "let the route assign one".
int serve_id(const IniFile& ini, const IniSection& s) {
    if (!s.take("serveid")) return 0;
    auto v = value(s, "serveid");
    if (v.empty()) return 0;
    if (v.size() > 3 || v.find_first_not_of("0123456789") != std::string::npos)
        bad_input(ini.source, "[" + s.name + "] serveid = " + v + ": not a serve id (000-999)");
    return std::stoi(v);
}

void write_vnet(const IniFile& ini, const IniSection& v, TomlOut& out) {
    out.table("vnet");
    for (const char* k : {"name", "group"})
        if (v.take(k)) out.kv(k, value(v, k));
    copy_bool(ini, v, "terminal", "terminal", out);
    copy_bool(ini, v, "startserve", "start_serve", out);
    copy_bool(ini, v, "startuse", "start_use", out);
    copy_bool(ini, v, "allow_unserve", "allow_unserve", out);
    copy_bool(ini, v, "unserve_remote", "unserve_remote", out);
    if (v.take("unserve_num")) {
        auto s = value(v, "unserve_num");
        if (s.empty() || s.size() > 6 || s.find_first_not_of("0123456789") != std::string::npos)
            bad_input(ini.source, "[vnet] unserve_num = " + s + ": not a count");
        int n = std::stoi(s);
        if (n > 499) out.kv("unserve_num", std::int64_t{499}, "vnet-v2 had " + s + "; tn allows at most 499");
        else out.kv("unserve_num", std::int64_t{n});
    }
}

void write_serve(const IniFile& ini, const IniSection& s, std::set<std::string>& names, TomlOut& out) {
    std::string name = s.take("name") ? value(s, "name") : "";
    if (name.empty()) name = s.name.substr(6);
    if (!names.insert(name).second) name = s.name.substr(6);  // two serves named alike: the section tells them apart
    if (!s.take("port")) bad_input(ini.source, "[" + s.name + "] has no port (vnet-v2 requires one)");
    out.array_table("serve");
    out.kv("name", name);
    if (int id = serve_id(ini, s); id > 0) out.kv("id", std::int64_t{id}, id >= 500 ? "static" : "dynamic: the route may change it");
    else out.comment("id: none, the route assigns one (vnet-v2's serveid 000)");
    if (s.take("type")) {
        auto t = value(s, "type");
        if (t != "tcp" && !t.empty()) bad_input(ini.source, "[" + s.name + "] type = " + t + ": vnet-v2 serves carry tcp only");
        out.kv("type", "tcp");
    }
    if (s.take("ip")) out.kv("ip", value(s, "ip"));
    out.kv("port", std::int64_t{port_of(ini, s, "port")});
    if (s.take("info")) out.kv("info", value(s, "info"));
    copy_bool(ini, s, "active", "active", out);
}

void write_use(const IniFile& ini, const IniSection& s, TomlOut& out) {
    int id = serve_id(ini, s);
    if (id == 0) {
        s.take("ip"), s.take("port"), s.take("active");
        out.dropped("[" + s.name + "]", "no serveid: vnet-v2 does not open such a use either");
        return;
    }
    out.array_table("use");
    out.kv("name", s.name.substr(4));
    out.kv("id", std::int64_t{id});
    if (s.take("ip")) out.kv("ip", value(s, "ip"));
    if (s.take("port")) out.kv("port", std::int64_t{port_of(ini, s, "port")});
    copy_bool(ini, s, "active", "active", out);
}

}  // namespace

ImportResult import_vnet_v2(const IniFile& ini, const ImportOptions& o) {
    const IniSection* route = ini.section("route");
    if (route == nullptr) bad_input(ini.source, "no [route] section (ip, port): not a vnet-v2 config.ini");
    // Boost's reader drops an empty section: a missing [vnet] is one with every key at its default.
    const IniSection* vnet = ini.section("vnet");
    bool any = false;
    for (const auto& s : ini.sections) any = any || s.name.rfind("serve.", 0) == 0 || s.name.rfind("use.", 0) == 0;
    if (vnet == nullptr && !any)
        bad_input(ini.source, "only [route]: a vnet-v2 route's config.ini? 'tn-route import' converts that one");
    if (!route->take("ip") || !route->take("port")) bad_input(ini.source, "[route] needs ip and port (vnet-v2 requires both)");
    auto host = value(*route, "ip");
    if (host.empty()) bad_input(ini.source, "[route] ip is empty");
    TomlOut out;
    out.comment("tn-vnet config made by 'tn-vnet import' from " + ini.source + " (vnet-v2 config.ini)");
    write_route_table(out, import::join_host_port(host, port_of(ini, *route, "port")), o, false, "vnet-v2 has no password");
    if (vnet != nullptr) write_vnet(ini, *vnet, out);
    std::set<std::string> names;
    for (const auto& s : ini.sections) {
        if (s.name.rfind("serve.", 0) == 0 && s.name.size() > 6) {
            s.used = true;
            write_serve(ini, s, names, out);
        } else if (s.name.rfind("use.", 0) == 0 && s.name.size() > 4) {
            s.used = true;
            write_use(ini, s, out);
        }
    }
    out.blank();
    import::drop_unused(ini, out, "vnet-v2 has no such key");
    return ImportResult{out.str(), std::nullopt, "vnet-v2"};
}

ImportResult import_vnet_text(std::string_view text, const std::string& source, const ImportOptions& o) {
    bool toml = source.size() >= 5 && source.compare(source.size() - 5, 5, ".toml") == 0;
    std::optional<IniFile> ini;
    if (!toml) {
        try {
            ini = import::parse_ini(text, source);
        } catch (const Error&) {
            try {  // frpc TOML under another name
                return import_frpc_toml(text, source, o);
            } catch (const Error&) {
            }
            throw;
        }
        if (ini && !ini->sections.empty() && ini->sections.front().name.empty()) toml = true;
    }
    if (toml) return import_frpc_toml(text, source, o);
    auto has = [&](std::string_view n) {
        for (const auto& s : ini->sections)
            if (s.name == n) return true;
        return false;
    };
    if (has("route") || has("vnet")) return import_vnet_v2(*ini, o);
    if (has("common") || !ini->sections.empty()) return import_frpc_ini(*ini, o);
    bad_input(source, "neither a vnet-v2 config.ini ([route], [vnet]) nor an frpc config ([common] or serverAddr)");
}

}  // namespace tn::vnet
