// tn-exec's command-line model: the shared SSH options, the per-subcommand ones, and the host list.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "password.hpp"
#include "ssh/client_config.hpp"

namespace tn::exec {

struct SshOptions {
    std::vector<std::string> identities;  // -i
    std::optional<std::uint16_t> port;    // -p
    std::string user;                     // -l
    std::string ssh_config, known_hosts;
    int connect_timeout = 10;
    bool accept_new = false;
    std::string jump;                     // -J [user@]host[:port]: reach the hosts through it
    PasswordOptions password_opts;              // --password-stdin | --password-file | --askpass
    std::shared_ptr<PasswordSource> password;   // made from password_opts once options are parsed
};

struct FanOut {
    std::vector<std::string> host_specs;  // -H values: "h1,h2", "@FILE", "@-"
    int parallel = 8;
    bool json = false;
    int persist = 0;  // --persist SECONDS: keep a master session per host (0: off)
};

struct RunOptions {
    bool no_stdin = false;  // -n
    double timeout = 0;     // -t seconds, 0: none
    std::vector<std::string> env;  // K=V
    std::string cwd;
    std::string shell;              // --shell STRING: sent as is
    bool tty = false;               // --tty: request a PTY
    std::optional<std::string> sudo;  // --sudo[=USER]: through sudo (empty: its default user, root)
    std::vector<std::string> args;  // [host] CMD ARG... (host absent with -H)
};

struct TransferOptions {
    bool recursive = false;
    bool resume = false;
    bool preserve = false;           // --preserve: modes as they are, without our umask
    bool progress = true;            // shown only when stderr is a TTY
    std::vector<std::string> paths;  // sources..., destination
};

// One host to work on: the label printed in prefixes and JSON, and how to reach it.
struct Target {
    std::string label;  // as the user typed it
    ssh::ClientConfig client;
    std::shared_ptr<PasswordSource> password;  // shared by every host, unless its host line names its own
    std::optional<ssh::ClientConfig> jump;     // -J: the jump host, same options but its own user and port
    std::string jump_label;                    // as typed, for messages
};

// "[user@]host[:port]" plus the shared options -> a Target; -l and -p win, as in ssh.
Target make_target(const std::string& spec, const SshOptions& o);

// One -H host: as typed, and the password file a host list named for it ("" for none).
struct HostEntry {
    std::string spec;
    std::string password_file;
    bool operator==(const HostEntry&) const = default;
};

// Expands -H values: comma lists, @FILE and @- (stdin): one host a line, '#' comments, optionally
// followed by `--password-file FILE` (relative to the list's directory). Throws ParseError naming
// the list and line for anything else on a line, or a bad host. Empty -> none.
std::vector<HostEntry> expand_hosts(const std::vector<std::string>& specs, std::istream& stdin_stream);

// The targets for -H: make_target for each, a host's own --password-file (read once per file)
// instead of the shared password source.
std::vector<Target> fan_targets(const std::vector<HostEntry>& hosts, const SshOptions& o);

// Splits "[user@]host[:port]:PATH" (host may be "[v6]"); nullopt when there is no host part. Digits
// between two colons are a port, as in the user@host:port:PATH that messages print.
struct RemotePath {
    std::string host;  // [user@]host[:port]
    std::string path;  // may be empty: the login directory
};
std::optional<RemotePath> split_remote(const std::string& arg);

// "K=V" -> pair; throws ParseError naming the bad word.
std::pair<std::string, std::string> parse_env(const std::string& kv);

}  // namespace tn::exec
