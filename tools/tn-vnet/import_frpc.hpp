// frpc's configs to tn-vnet TOML: the INI form ([common] server_addr/server_port/token, one section per
// proxy) and the TOML form (serverAddr, serverPort, auth.token, [[proxies]]) meet in one model.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/secret.hpp"
#include "import_vnet.hpp"

namespace tn::vnet {

struct FrpProxy {
    std::string name;
    std::string type = "tcp";
    std::string local_ip = "127.0.0.1";
    std::optional<std::uint16_t> local_port;
    std::optional<std::uint16_t> remote_port;
    std::vector<std::string> custom_domains;
};

struct FrpClient {
    std::string server_addr = "0.0.0.0";  // frpc's defaults
    std::uint16_t server_port = 7000;
    std::optional<Secret> token;
    std::vector<FrpProxy> proxies;
    std::vector<std::pair<std::string, std::string>> dropped;  // (what, why) found while reading
};

// The TOML tn-vnet reads, for frpc settings already read into `c` (`name`: the vnet's name).
ImportResult write_frpc(const FrpClient& c, const std::string& source, const std::string& from, const ImportOptions& o,
                        const import::IniFile* ini);

ImportResult import_frpc_ini(const import::IniFile& ini, const ImportOptions& o);
ImportResult import_frpc_toml(std::string_view text, const std::string& source, const ImportOptions& o);

}  // namespace tn::vnet
