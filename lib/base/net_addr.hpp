// Parsers for the address forms users type: host:port, [v6]:port, [user@]host[:port], forward specs.
// They throw tn::ParseError with a message naming the bad part; the caller maps it to 64 or 78.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tn {

struct HostPort {
    std::string host;  // without brackets
    std::uint16_t port = 0;
    std::string str() const;  // brackets added back for IPv6
    bool operator==(const HostPort&) const = default;
};

struct SshTarget {
    std::string user;  // empty: not given
    std::string host;
    std::optional<std::uint16_t> port;
    bool operator==(const SshTarget&) const = default;
};

// `bind` is empty when not given (the tool's default applies), "*" for every address.
struct ForwardSpec {
    std::string bind;
    std::uint16_t port = 0;  // 0: let the listening side choose
    std::string host;
    std::uint16_t host_port = 0;
    bool operator==(const ForwardSpec&) const = default;
};

struct DynamicSpec {
    std::string bind;
    std::uint16_t port = 0;
    bool operator==(const DynamicSpec&) const = default;
};

std::uint16_t parse_port(std::string_view s, std::string_view whole, bool allow_zero = false);
HostPort parse_host_port(std::string_view s);
SshTarget parse_ssh_target(std::string_view s);
ForwardSpec parse_forward_spec(std::string_view s);
DynamicSpec parse_dynamic_spec(std::string_view s);

}  // namespace tn
