// INI reading over Boost.PropertyTree, and the TOML line writer of the importers.
#include "common/import_util.hpp"

#include <boost/property_tree/ini_parser.hpp>
#include <boost/property_tree/ptree.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

#include "base/error.hpp"
#include "base/strings.hpp"
#include "config/document.hpp"

namespace tn::import {

config::Document parse_frp_toml(std::string_view text, const std::string& source) {
    try {
        return config::Document::parse(text, source);
    } catch (const Error& e) {
        throw Error(ExitCode::data, e.what());
    }
}

void throw_diagnostics(const config::Document& doc) {
    if (doc.diagnostics().empty()) return;
    std::string msg;
    for (const auto& d : doc.diagnostics()) msg += (msg.empty() ? "" : "\n") + d.str();
    throw Error(ExitCode::data, msg);
}

void read_frp_auth(const config::Table& root, std::optional<Secret>& token, Dropped& dropped) {
    auto a = root.table("auth");
    if (!a) return;
    if (auto m = a->string("method"); m && *m != "token") dropped.emplace_back("auth.method = " + *m, "tn groups prove a token");
    if (auto t = a->string("token"); t && !t->empty()) token = Secret(*t);
    for (const auto& k : a->keys())
        if (k != "method" && k != "token") dropped.emplace_back("auth." + k, kNotInTn);
}

std::optional<std::string> IniSection::take(std::string_view key) const {
    for (const auto& k : keys)
        if (k.key == key) {
            k.used = true;
            return k.value;
        }
    return std::nullopt;
}

const IniSection* IniFile::section(std::string_view name) const {
    for (const auto& s : sections)
        if (s.name == name) {
            s.used = true;
            return &s;
        }
    return nullptr;
}

IniFile parse_ini(std::string_view text, const std::string& source) {
    // What a value holds is printed into TOML and comments: refuse bytes that are not text up front
    // (invalid UTF-8 would make TOML no reader accepts; control bytes would reach a terminal).
    std::size_t line = 1;
    for (std::size_t at = 0; at < text.size(); ++line) {
        auto nl = text.find('\n', at);
        auto one = text.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
        if (escape_controls(one, "\t\r") != one)
            throw Error(ExitCode::data, source + ":" + std::to_string(line) + ": error: not UTF-8 text (or a control character)");
        if (nl == std::string_view::npos) break;
        at = nl + 1;
    }
    namespace pt = boost::property_tree;
    pt::ptree tree;
    std::istringstream in{std::string(text)};
    try {
        pt::read_ini(in, tree);
    } catch (const pt::ini_parser_error& e) {
        throw Error(ExitCode::data, source + ":" + std::to_string(e.line()) + ": error: " + e.message());
    }
    IniFile f{source, {}};
    IniSection root;
    for (const auto& [name, node] : tree) {
        // Keys before the first section come out as leaves of the root; sections have children (or
        // none, like "[empty]", which reads the same as a key with an empty value: a section it is).
        if (node.empty() && !node.data().empty()) {
            root.keys.push_back(IniKey{name, node.data()});
            continue;
        }
        IniSection s{name, {}};
        for (const auto& [k, v] : node) s.keys.push_back(IniKey{k, v.data()});
        f.sections.push_back(std::move(s));
    }
    if (!root.keys.empty()) f.sections.insert(f.sections.begin(), std::move(root));
    return f;
}

std::string read_source(const std::filesystem::path& path) {
    std::error_code ec;
    auto size = std::filesystem::file_size(path, ec);
    if (ec) throw Error(ExitCode::data, path.string() + ": error: cannot read: " + ec.message());
    if (size > (1u << 20)) throw Error(ExitCode::data, path.string() + ": error: larger than 1 MiB: not a config");
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    if (!in && !in.eof()) throw Error(ExitCode::data, path.string() + ": error: cannot read");
    return ss.str();
}

std::string strip_inline_comment(std::string_view v) {
    v = v.substr(0, v.find_first_of(";#"));
    auto b = v.find_first_not_of(" \t");
    if (b == std::string_view::npos) return {};
    auto e = v.find_last_not_of(" \t");
    return std::string(v.substr(b, e - b + 1));
}

std::optional<bool> parse_bool(std::string_view v) {
    std::string s(v);
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (const char* t : {"1", "t", "true", "y", "yes", "on"})
        if (s == t) return true;
    for (const char* f : {"0", "f", "false", "n", "no", "off"})
        if (s == f) return false;
    return std::nullopt;
}

std::optional<std::uint16_t> parse_port(std::string_view v) {
    unsigned n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc() || p != v.data() + v.size() || n < 1 || n > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(n);
}

std::string join_host_port(const std::string& host, std::uint16_t port) {
    bool v6 = host.find(':') != std::string::npos && host.front() != '[';
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

void bad_input(const std::string& source, const std::string& what) {
    throw Error(ExitCode::data, source + ": error: " + what);
}

void TomlOut::line(std::string text, const std::string& note) {
    if (!note.empty()) text += "  # " + note;
    text_ += text + "\n";
}

void TomlOut::comment(const std::string& text) { text_ += "# " + escape_controls(text) + "\n"; }
void TomlOut::table(std::string_view name) { text_ += "\n[" + std::string(name) + "]\n"; }
void TomlOut::array_table(std::string_view name) { text_ += "\n[[" + std::string(name) + "]]\n"; }

void TomlOut::kv(std::string_view key, std::string_view value, const std::string& note) {
    line(std::string(key) + " = " + config::quote(value), note);
}
void TomlOut::kv(std::string_view key, std::int64_t value, const std::string& note) {
    line(std::string(key) + " = " + std::to_string(value), note);
}
void TomlOut::kv(std::string_view key, bool value, const std::string& note) {
    line(std::string(key) + " = " + (value ? "true" : "false"), note);
}
void TomlOut::kv(std::string_view key, const std::vector<std::string>& value, const std::string& note) {
    std::string t = std::string(key) + " = [";
    for (std::size_t i = 0; i < value.size(); ++i) t += (i ? ", " : "") + config::quote(value[i]);
    line(t + "]", note);
}

void TomlOut::dropped(const std::string& what, const std::string& why) {
    // comment() escapes control bytes: a value cannot end the comment and start TOML of its own.
    comment("not carried over: " + what + (why.empty() ? "" : " (" + why + ")"));
}

bool looks_secret(std::string_view key) {
    std::string k(key);
    std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (const char* w : {"token", "pwd", "pass", "secret", "key", "sk"})
        if (k.find(w) != std::string::npos) return true;
    return false;
}

void drop_unused(const IniFile& ini, TomlOut& out, const std::string& why) {
    for (const auto& s : ini.sections) {
        std::string head = s.name.empty() ? "" : "[" + s.name + "] ";
        if (!s.used) {
            out.dropped(s.name.empty() ? "keys before the first section" : "[" + s.name + "]", why);
            continue;
        }
        for (const auto& k : s.keys)
            if (!k.used) out.dropped(head + k.key + " = " + (looks_secret(k.key) ? "(hidden)" : k.value), why);
    }
}

}  // namespace tn::import
