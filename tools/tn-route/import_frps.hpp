// `tn-route import`: frps .ini/.toml and vnet-v2's route config.ini to tn-route TOML. Pure: text in,
// text out; the caller reads the file and writes the token and password files.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/secret.hpp"
#include "common/import_util.hpp"

namespace tn::route {

struct ImportOptions {
    std::string group = "default";  // frps has no groups: every frpc joins this one
    std::string token_file;         // [[group]] token_file ("": a comment says how)
    bool token_out = false;         // token_file is where the caller writes the token
    std::string password_file;      // [dashboard] password_file
    bool password_out = false;
    std::vector<std::string> domains;  // [[group]] domains (frps lets any client take any domain)
};

struct ImportResult {
    std::string toml;
    std::optional<Secret> token;     // the source's token
    std::optional<Secret> password;  // the source's dashboard password
    std::string from;                // "frps ini", "frps toml", "vnet-v2 route"
};

// Picks the reader as tn-vnet import does (TOML by name or keys before any section; INI [common]:
// frps, [route]: vnet-v2's route). Throws tn::Error(data) on broken input.
ImportResult import_route_text(std::string_view text, const std::string& source, const ImportOptions& o);

}  // namespace tn::route
