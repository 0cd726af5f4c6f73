// What `tn-vnet import` and `tn-route import` share: INI files read as go-ini (vnet-v2 and frp) reads
// them, TOML written line by line with a comment for every setting that is not carried over, and the
// one error for broken input (65, FILE:LINE when the reader knows the line).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/secret.hpp"
#include "config/document.hpp"

namespace tn::import {

// Why a setting is not carried over when tn simply has nothing like it.
inline constexpr const char* kNotInTn = "tn has no such setting";
// (what, why) of each setting a reader saw and could not carry over.
using Dropped = std::vector<std::pair<std::string, std::string>>;

// An frp TOML file (frps or frpc) parsed: broken TOML throws tn::Error(data) "SOURCE:LINE: ...".
config::Document parse_frp_toml(std::string_view text, const std::string& source);
// What reading the document found wrong (a wrong type, a port out of range), all in one
// tn::Error(data), one per line; nothing when it found nothing.
void throw_diagnostics(const config::Document& doc);
// frp's `auth` table, the same in frps and frpc: the token is carried over (a group's token in tn),
// method = "token" is what tn does anyway, anything else lands in `dropped`.
void read_frp_auth(const config::Table& root, std::optional<Secret>& token, Dropped& dropped);

struct IniKey {
    std::string key;
    std::string value;  // as written: inline comments are the dialect's business (strip_inline_comment)
    mutable bool used = false;
};

struct IniSection {
    std::string name;  // "" for keys before the first section
    std::vector<IniKey> keys;
    mutable bool used = false;
    // The value of `key`, marked as used; nullopt when absent.
    std::optional<std::string> take(std::string_view key) const;
};

struct IniFile {
    std::string source;  // the file name, for messages
    std::vector<IniSection> sections;
    const IniSection* section(std::string_view name) const;  // marks it used
};

// Parses INI text with Boost.PropertyTree's reader. A syntax error (no '=', a duplicate section or
// key) throws tn::Error(data) "SOURCE:LINE: error: ...".
IniFile parse_ini(std::string_view text, const std::string& source);
// The file's text (at most 1 MiB); tn::Error(data) when it cannot be read.
std::string read_source(const std::filesystem::path& path);

// go-ini's default (vnet-v2): a value ends at the first ';' or '#', surrounding blanks dropped.
std::string strip_inline_comment(std::string_view v);
// go-ini's booleans: 1/t/true/y/yes/on and 0/f/false/n/no/off, any case; nullopt for anything else.
std::optional<bool> parse_bool(std::string_view v);
// A port 1-65535 in decimal; nullopt for anything else.
std::optional<std::uint16_t> parse_port(std::string_view v);
// "host:port", bracketing an IPv6 host.
std::string join_host_port(const std::string& host, std::uint16_t port);

// Throws tn::Error(data) "SOURCE: error: what".
[[noreturn]] void bad_input(const std::string& source, const std::string& what);

// The TOML an importer prints, built line by line so comments sit next to what they explain.
class TomlOut {
public:
    void comment(const std::string& text);
    void blank() { text_ += "\n"; }
    void table(std::string_view name);        // a blank line, then [name]
    void array_table(std::string_view name);  // a blank line, then [[name]]
    void kv(std::string_view key, std::string_view value, const std::string& note = "");
    void kv(std::string_view key, const char* value, const std::string& note = "") { kv(key, std::string_view(value), note); }
    void kv(std::string_view key, std::int64_t value, const std::string& note = "");
    void kv(std::string_view key, bool value, const std::string& note = "");
    void kv(std::string_view key, const std::vector<std::string>& value, const std::string& note = "");
    // "# not carried over: WHAT (WHY)"
    void dropped(const std::string& what, const std::string& why);
    const std::string& str() const { return text_; }

private:
    void line(std::string text, const std::string& note);
    std::string text_;
};

// Keys whose values are not printed in comments (tokens, passwords, secret keys).
bool looks_secret(std::string_view key);
// Every key of `ini` that no converter took, as TomlOut::dropped lines ("[section] key = value", secrets hidden).
void drop_unused(const IniFile& ini, TomlOut& out, const std::string& why);

}  // namespace tn::import
