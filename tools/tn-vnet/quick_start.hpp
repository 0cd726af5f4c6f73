// `tn-vnet serve|use` without a config file, as `frpc tcp` does: one serve or one use from flags.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vnet_config.hpp"

namespace tn::vnet {

struct QuickArgs {
    bool serve = true;  // serve: publish a local port; use: map a serve id to a local port
    std::vector<std::string> routes;  // --route, repeatable: failover order
    std::string token_file, fingerprint, group = "default", name, ip = "127.0.0.1";
    int id = 0;  // serve: 0 = let the route assign one; use: 1-999, required
    int port = 0;
    std::string type = "tcp";  // or "udp"
    int remote_port = 0;  // serve only
    std::vector<std::string> domains;  // serve only
};

// The config the flags describe, checked as the file loader checks a file; a bad flag throws
// tn::Error(usage) naming it.
VnetConfig quick_config(const QuickArgs& a);

}  // namespace tn::vnet
