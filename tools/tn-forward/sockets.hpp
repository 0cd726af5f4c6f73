// Plain TCP helpers for the forwards' local side: listeners and non-blocking connects (also the
// tunnel's reachability probes: a SYN, no SSH handshake).
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

}  // namespace tn::forward
