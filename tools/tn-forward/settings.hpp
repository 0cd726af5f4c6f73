// tn-forward's settings: defaults < -c FILE < command line, and the forward list a reload diffs.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/net_addr.hpp"
#include "ssh/client_config.hpp"

namespace tn::forward {

enum class Kind { local, remote, dynamic };

struct Rule {
    Kind kind = Kind::local;
    ForwardSpec spec;  // for dynamic: bind + port only
    std::string str() const;  // "-L 8080:localhost:80": identity for reload diffs and log lines
    std::string listen_host() const;  // bind address with the tool's default applied
    bool operator==(const Rule& o) const { return str() == o.str(); }
};

Rule parse_rule(Kind kind, const std::string& text);  // throws ParseError

struct Settings {
    ssh::ClientConfig client;
    std::vector<Rule> rules;
    int keepalive_s = 5;
    int keepalive_count = 3;
    std::optional<HostPort> probe;
    int backoff_max_s = 30;
    bool once = false;
    bool events = false;
    std::string config_file;  // for SIGHUP reloads
};

// The command-line values, kept apart so a reload can re-merge them over a changed file.
struct CliValues {
    std::string target;
    std::string user, identity, ssh_config, known_hosts;
    std::optional<std::uint16_t> port;
    std::vector<std::string> local, remote, dynamic;
    std::optional<int> keepalive, keepalive_count, backoff_max, connect_timeout;
    std::string probe;
    bool accept_new = false, once = false, events = false;
};

// Merges defaults, the config file (if any) and the command line. Throws tn::Error(config) for file
// problems (FILE:LINE:COL) and ParseError for bad command-line values.
Settings load_settings(const CliValues& cli, const std::string& config_file);

}  // namespace tn::forward
