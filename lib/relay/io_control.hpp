// The Unix control sockets of tn-route and tn-vnet: a private state directory, a socket only its
// owner can connect to, and a peer check on every connection. One place, so both tools keep the
// same rules (another local user must not reach a route's status or a vnet's ctl).
#pragma once

#include <filesystem>

#include "relay/io_stream.hpp"

namespace tn::relay {

using local_socket = asio::local::stream_protocol::socket;
using local_acceptor = asio::local::stream_protocol::acceptor;

// The state directory must be a directory owned by this user (effective uid) and closed to group and
// others (no bit of 077), as ssh does with ~/.ssh: else tn::Error(config) naming the directory, its
// owner and mode, and the chmod/chown that fixes it (exit 78).
void require_private_dir(const std::filesystem::path& dir);

// Creates the state directory (0700) if missing, checks it with require_private_dir, removes a
// stale socket at `path`, and binds and listens there under umask 077, then chmods the socket 0600.
// Throws tn::Error(config) for the directory, tn::Error(io) when the socket cannot be made.
std::shared_ptr<local_acceptor> bind_control_socket(asio::io_context& io, const std::filesystem::path& path);

// True when the peer (SO_PEERCRED) runs as this process's effective uid or as root. Every accepted
// control connection is checked: the file mode alone would not survive a careless chmod.
bool peer_is_owner(local_socket& s);

}  // namespace tn::relay
