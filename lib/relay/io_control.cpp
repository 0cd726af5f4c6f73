// Private control sockets for Asio: the descriptor comes from base/control_socket.
#include "relay/io_control.hpp"

#include "base/error.hpp"

namespace tn::relay {

std::shared_ptr<local_acceptor> bind_control_socket(asio::io_context& io, const std::filesystem::path& path) {
    auto fd = tn::bind_control_socket(path);
    auto acc = std::make_shared<local_acceptor>(io);
    error_code ec;
    acc->assign(asio::local::stream_protocol(), fd.get(), ec);
    if (ec) throw Error(ExitCode::io, "cannot listen on control socket " + path.string() + ": " + ec.message());
    (void)fd.release();  // the acceptor owns it now
    return acc;
}

}  // namespace tn::relay
