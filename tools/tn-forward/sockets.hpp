// Plain TCP helpers for the forwards' local side: listeners, non-blocking connects, reachability probes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/unique_fd.hpp"

namespace tn::forward {

// A listening socket on host:port (numeric or resolvable); throws tn::Error (io) when it cannot bind.
UniqueFd listen_tcp(const std::string& host, std::uint16_t port);

// A non-blocking connect in progress (empty on immediate failure); the caller waits for POLLOUT and
// reads SO_ERROR.
UniqueFd connect_tcp(const std::string& host, std::uint16_t port);

// A blocking TCP reachability check with a short timeout: costs one SYN, no SSH handshake.
bool tcp_probe(const std::string& host, std::uint16_t port, int timeout_ms);

// Whether a failed connect never reached a server (refused, unreachable, timed out), as opposed to one
// that answered TCP and then failed; libssh reports the difference only as text.
bool tcp_unanswered(std::string_view connect_error);

}  // namespace tn::forward
