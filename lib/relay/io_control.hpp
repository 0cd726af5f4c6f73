// The Unix control sockets of tn-route and tn-vnet in Asio: base/control_socket.hpp's private socket
// (owner-only directory, 0600 socket bound under umask 077, SO_PEERCRED check) wrapped in an acceptor.
#pragma once

#include <filesystem>

#include "base/control_socket.hpp"
#include "relay/io_stream.hpp"

namespace tn::relay {

using local_socket = asio::local::stream_protocol::socket;
using local_acceptor = asio::local::stream_protocol::acceptor;

// tn::bind_control_socket(path) (which see: errors, modes), as an acceptor on `io`.
std::shared_ptr<local_acceptor> bind_control_socket(asio::io_context& io, const std::filesystem::path& path);

// True when the peer (SO_PEERCRED) runs as this process's effective uid or as root.
inline bool peer_is_owner(local_socket& s) { return tn::peer_is_owner(s.native_handle()); }

}  // namespace tn::relay
