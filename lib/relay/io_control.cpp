// Private control sockets: directory checks, bind under umask 077, SO_PEERCRED.
#include "relay/io_control.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "base/error.hpp"
#include "base/runtime_dir.hpp"

namespace tn::relay {

void require_private_dir(const std::filesystem::path& dir) {
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0)
        throw Error(ExitCode::config, "state directory " + dir.string() + ": " + std::strerror(errno));
    if (!S_ISDIR(st.st_mode)) throw Error(ExitCode::config, "state directory " + dir.string() + " is not a directory");
    std::ostringstream mode;
    mode << std::oct << (st.st_mode & 07777);
    if (st.st_uid != ::geteuid())
        throw Error(ExitCode::config, "state directory " + dir.string() + " is owned by uid " + std::to_string(st.st_uid) +
                                          ", not by this user (uid " + std::to_string(::geteuid()) +
                                          "): use a directory of your own (TN_STATE_DIR) or chown it");
    if (st.st_mode & 077)
        throw Error(ExitCode::config, "state directory " + dir.string() + " has mode " + mode.str() +
                                          ": other users could reach its control sockets; run chmod 700 " + dir.string());
}

std::shared_ptr<local_acceptor> bind_control_socket(asio::io_context& io, const std::filesystem::path& path) {
    auto dir = path.parent_path();
    ensure_state_dir();
    require_private_dir(dir);
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());  // a stale one
    auto acc = std::make_shared<local_acceptor>(io);
    asio::local::stream_protocol::endpoint ep(path.string());
    error_code ec;
    acc->open(ep.protocol(), ec);
    if (!ec) {
        // The socket file gets 0600 from its birth: no window in which another user could connect.
        auto old = ::umask(077);
        acc->bind(ep, ec);
        ::umask(old);
    }
    if (!ec && ::chmod(path.c_str(), 0600) != 0) ec = error_code(errno, boost::system::system_category());
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw Error(ExitCode::io, "cannot listen on control socket " + path.string() + ": " + ec.message());
    return acc;
}

bool peer_is_owner(local_socket& s) {
    ucred cr{};
    socklen_t len = sizeof cr;
    if (::getsockopt(s.native_handle(), SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) return false;
    return cr.uid == ::geteuid() || cr.uid == 0;
}

}  // namespace tn::relay
