// `tn-vnet import`: vnet-v2 config.ini and frpc .ini/.toml to tn-vnet TOML. Pure: text in, text out;
// the caller reads the file and writes the token file.
#pragma once

#include <optional>
#include <string>

#include "base/secret.hpp"
#include "common/import_util.hpp"

namespace tn::vnet {

struct ImportOptions {
    std::string token_file;   // written as [route] token_file ("" : a comment says how)
    bool token_out = false;   // token_file is where the caller writes the source's token
    std::string fingerprint;  // normalised "sha256:<hex>", or "" (a comment says how)
};

struct ImportResult {
    std::string toml;
    std::optional<Secret> token;  // the source's token, for --token-out
    std::string from;             // "vnet-v2", "frpc ini", "frpc toml"
};

// vnet-v2's config.ini: [route] ip/port, [vnet], [serve.X], [use.X]. Throws tn::Error(data) on bad values.
ImportResult import_vnet_v2(const import::IniFile& ini, const ImportOptions& o);

// Picks the reader by content: TOML when the name ends in .toml or keys come before any section (frpc
// TOML has them, neither INI dialect does), else INI: frpc with [common] or proxy sections, vnet-v2
// with [route]/[vnet]. Throws tn::Error(data) on broken input.
ImportResult import_vnet_text(std::string_view text, const std::string& source, const ImportOptions& o);

// The [route] table both importers write: address, then token_file and fingerprint or how to set them.
void write_route_table(import::TomlOut& out, const std::string& address, const ImportOptions& o, bool source_has_token,
                       const std::string& no_token_why);

}  // namespace tn::vnet
