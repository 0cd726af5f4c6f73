// Control socket I/O in base/control_line.hpp's format, with bounded reads on both sides: a request
// line of at most 64 bytes here, a reply of at most kControlReplyMax.
#include "control.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/control_line.hpp"
#include "base/error.hpp"

namespace tn::tuntool {
namespace {

sockaddr_un unix_addr(const std::filesystem::path& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.string().size() >= sizeof a.sun_path)
        throw Error(ExitCode::io, "control socket path too long: " + path.string());
    std::strcpy(a.sun_path, path.c_str());
    return a;
}

void write_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
        ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        off += static_cast<std::size_t>(n);
    }
}

}  // namespace

ControlServer::ControlServer(std::filesystem::path path) : path_(std::move(path)) {
    auto addr = unix_addr(path_);
    fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd_) throw Error(ExitCode::io, std::string("socket: ") + std::strerror(errno));
    ::unlink(path_.c_str());  // the instance lock (taken before) says no live server owns it
    mode_t old = ::umask(077);
    int rc = ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::umask(old);
    if (rc == 0) rc = ::chmod(path_.c_str(), 0600);
    if (rc < 0 || ::listen(fd_.get(), 16) < 0)
        throw Error(ExitCode::io, "cannot listen on " + path_.string() + ": " + std::strerror(errno));
}

ControlServer::~ControlServer() { ::unlink(path_.c_str()); }

void ControlServer::serve_one(const std::function<ControlReply(std::string_view)>& answer) {
    UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) return;
    // The socket is 0600 in a 0700 directory; the peer's credentials are checked all the same, since
    // a state directory may be shared (TN_STATE_DIR) or opened up by mistake.
    ucred cred{};
    socklen_t cl = sizeof cred;
    if (::getsockopt(c.get(), SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0 || (cred.uid != ::geteuid() && cred.uid != 0)) return;
    // A status client sends one short line at once; one that does not is not waited on for long,
    // since the data path shares this thread.
    char req[64];
    std::size_t got = 0;
    pollfd p{c.get(), POLLIN, 0};
    while (got < sizeof req && ::poll(&p, 1, 200) > 0) {
        ssize_t n = ::recv(c.get(), req + got, sizeof req - got, 0);
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
        if (std::memchr(req, '\n', got)) break;
    }
    std::string_view line(req, got);
    auto words = decode_control_request(line.substr(0, line.find('\n')));
    ControlReply r = words.size() == 1 ? answer(words[0])
                                       : ControlReply{to_int(ExitCode::usage), "a tn-tun request is one word\n"};
    write_all(c.get(), encode_control_reply(r));
}

std::string control_request(const std::filesystem::path& path, const std::string& request) {
    auto r = control_ask(path, {request}, "no tn-tun server or client answers");
    if (r.code != 0) {
        while (!r.body.empty() && r.body.back() == '\n') r.body.pop_back();
        throw Error(static_cast<ExitCode>(r.code), r.body);
    }
    return r.body;
}

}  // namespace tn::tuntool
