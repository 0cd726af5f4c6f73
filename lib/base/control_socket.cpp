// Private control sockets: directory checks, bind under umask 077, SO_PEERCRED.
#include "base/control_socket.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/error.hpp"

namespace tn {

namespace {
std::string mode_text(mode_t m) {
    char b[8];
    std::snprintf(b, sizeof b, "%04o", static_cast<unsigned>(m & 07777));
    return b;
}
}  // namespace

void require_private_dir(const std::filesystem::path& dir) {
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0)
        throw Error(ExitCode::config, "state directory " + dir.string() + ": " + std::strerror(errno));
    if (!S_ISDIR(st.st_mode)) throw Error(ExitCode::config, "state directory " + dir.string() + " is not a directory");
    if (st.st_uid != ::geteuid())
        throw Error(ExitCode::config, "state directory " + dir.string() + " is owned by uid " + std::to_string(st.st_uid) +
                                          ", not by this user (uid " + std::to_string(::geteuid()) +
                                          "): use a directory of your own (TN_STATE_DIR) or chown it");
    if (st.st_mode & 077)
        throw Error(ExitCode::config, "state directory " + dir.string() + " is open to other users (mode " +
                                          mode_text(st.st_mode) + "): they could reach its control sockets; run 'chmod 700 " +
                                          dir.string() + "'");
}

UniqueFd bind_control_socket(const std::filesystem::path& path) {
    auto dir = path.parent_path();
    if (dir.empty()) dir = ".";
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        throw Error(ExitCode::config, "cannot create state directory " + dir.string() + ": " + std::strerror(errno));
    require_private_dir(dir);
    auto fail = [&](const char* what) {
        return Error(ExitCode::io, "cannot listen on control socket " + path.string() + ": " + what + ": " + std::strerror(errno));
    };
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.native().size() >= sizeof sa.sun_path) {
        errno = ENAMETOOLONG;
        throw fail("path");
    }
    std::memcpy(sa.sun_path, path.c_str(), path.native().size());
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());  // a stale one
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw fail("socket");
    auto old = ::umask(077);
    int rc = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
    int bind_errno = errno;
    ::umask(old);
    errno = bind_errno;
    if (rc != 0) throw fail("bind");
    if (::chmod(path.c_str(), 0600) != 0) throw fail("chmod");
    if (::listen(fd.get(), SOMAXCONN) != 0) throw fail("listen");
    return fd;
}

std::optional<uid_t> foreign_peer(int fd) {
    ucred cr{};
    socklen_t len = sizeof cr;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) return static_cast<uid_t>(-1);
    if (cr.uid == ::geteuid() || cr.uid == 0) return std::nullopt;
    return cr.uid;
}

}  // namespace tn
