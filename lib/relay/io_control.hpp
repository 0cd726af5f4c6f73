// The Unix control sockets of tn-route and tn-vnet in Asio: base/control_socket.hpp's private socket
// (owner-only directory, 0600 socket bound under umask 077, SO_PEERCRED check) wrapped in an acceptor.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "base/control_line.hpp"
#include "base/control_socket.hpp"
#include "relay/io_stream.hpp"

namespace tn::relay {

using local_socket = asio::local::stream_protocol::socket;
using local_acceptor = asio::local::stream_protocol::acceptor;

// tn::bind_control_socket(path) (which see: errors, modes), as an acceptor on `io`.
std::shared_ptr<local_acceptor> bind_control_socket(asio::io_context& io, const std::filesystem::path& path);

// True when the peer (SO_PEERCRED) runs as this process's effective uid or as root.
inline bool peer_is_owner(local_socket& s) { return tn::peer_is_owner(s.native_handle()); }

// One control connection in base/control_line.hpp's format: reads the request line (at most
// kControlRequestMax bytes; a longer one or a close ends it unanswered) and hands its words to
// `handle`, whose reply (once, now or later) is written before the connection closes.
using ControlHandler = std::function<void(std::vector<std::string> words, std::function<void(ControlReply)> reply)>;
void serve_control(std::shared_ptr<local_socket> s, ControlHandler handle);

}  // namespace tn::relay
