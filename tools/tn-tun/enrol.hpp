// `tn-tun server add-peer NAME` / `remove-peer NAME`: enrolment without hand-editing. The server's
// config file stays the one source of truth (a restart keeps what was added): the peer is added to or
// removed from it, checked as a whole before it replaces the old file, and a running server is told to
// reload through its control socket, as SIGHUP would.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>

#include "base/log.hpp"

namespace tn::tuntool {

// Pure text edits of a server config, so comments and layout survive.
// A `[[peer]]` table appended to `config` (which ends with a newline afterwards).
std::string append_peer(std::string config, const std::string& name, const std::string& public_key,
                        const std::optional<std::string>& psk_file);
// `config` without the `[[peer]]` table whose name is `name` (from its header to the next table header
// or the end). Throws tn::Error(config) when there is none.
std::string remove_peer_text(const std::string& config, const std::string& name);

struct AddPeer {
    std::filesystem::path config;      // the server's config file
    std::string name;
    std::string endpoint;              // host:port clients reach the server at ("" : from [server] listen)
    std::filesystem::path out_dir;     // where the client's key (and pre-shared key) files go
    bool psk = false;                  // also make a pre-shared key for the pair
};

// Makes the client's keys, adds the peer to the server's config, asks a running server to reload,
// and prints the client's config on `out`. Exit code 0; tn::Error (78 for a bad name or endpoint, a
// name already there or a config that would not load, 74 for a key file that exists) otherwise.
int add_peer(const AddPeer& a, std::ostream& out, const log::Logger& log);
// Removes the peer from the config and asks a running server to reload (its session ends at once).
int remove_peer(const std::filesystem::path& config, const std::string& name, const log::Logger& log);

}  // namespace tn::tuntool
