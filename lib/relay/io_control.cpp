// Private control sockets for Asio: the descriptor comes from base/control_socket.
#include "relay/io_control.hpp"

#include <istream>

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

void serve_control(std::shared_ptr<local_socket> s, ControlHandler handle) {
    auto buf = std::make_shared<asio::streambuf>(kControlRequestMax);
    asio::async_read_until(*s, *buf, '\n', [s, buf, handle = std::move(handle)](error_code ec, std::size_t) {
        if (ec) return;
        std::istream in(buf.get());
        std::string line;
        std::getline(in, line);
        handle(decode_control_request(line), [s](ControlReply r) {
            auto out = std::make_shared<std::string>(encode_control_reply(r));
            asio::async_write(*s, asio::buffer(*out), [s, out](error_code, std::size_t) {});
        });
    });
}

}  // namespace tn::relay
