// The control socket: non-blocking on the server side (it shares the forwarding thread), with bounded
// requests and replies, and only the instance's own user served.
#include "control.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.hpp"

namespace tn::forward {
namespace {

constexpr std::size_t max_pending = 8;         // status clients waiting for their request line
constexpr std::chrono::seconds line_wait{1};  // a status client sends its line at once
constexpr std::size_t max_line = 64;

sockaddr_un unix_addr(const std::filesystem::path& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.native().size() >= sizeof a.sun_path)
        throw Error(ExitCode::io, "control socket path too long: " + path.string() + " (set TN_STATE_DIR shorter)");
    std::strcpy(a.sun_path, path.c_str());
    return a;
}

// Another user must not read our forwards and servers: the 0700 dir and 0600 socket already say so,
// and the peer's credentials say it again in case either was loosened.
bool same_user(int fd) {
    ucred cred{};
    socklen_t len = sizeof cred;
    return ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == ::geteuid();
}

}  // namespace

ControlServer::ControlServer(std::filesystem::path path) : path_(std::move(path)) {
    auto addr = unix_addr(path_);
    fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd_) throw Error(ExitCode::io, std::string("socket: ") + std::strerror(errno));
    ::unlink(path_.c_str());
    mode_t old = ::umask(0177);  // 0600 from the start: no window with a wider mode
    int rc = ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::umask(old);
    if (rc < 0 || ::listen(fd_.get(), 16) < 0)
        throw Error(ExitCode::io, "cannot listen on " + path_.string() + ": " + std::strerror(errno));
}

ControlServer::~ControlServer() { ::unlink(path_.c_str()); }

void ControlServer::add_pollfds(std::vector<pollfd>& fds) const {
    fds.push_back({fd_.get(), POLLIN, 0});
    for (const auto& c : clients_) fds.push_back({c.fd.get(), POLLIN, 0});
}

ControlServer::Clock::time_point ControlServer::next_deadline() const {
    auto t = Clock::time_point::max();
    for (const auto& c : clients_) t = std::min(t, c.deadline);
    return t;
}

void ControlServer::accept_clients(Clock::time_point now) {
    for (;;) {
        UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!c) return;
        if (!same_user(c.get()) || clients_.size() >= max_pending) continue;  // closed unanswered
        clients_.push_back(Client{std::move(c), {}, now + line_wait});
    }
}

void ControlServer::handle(const std::vector<pollfd>& fds, std::size_t first, Clock::time_point now,
                           const Render& render) {
    std::size_t i = first + 1;
    for (auto it = clients_.begin(); it != clients_.end(); ++i) {
        bool done = false;
        if (i < fds.size() && fds[i].fd == it->fd.get() && fds[i].revents != 0) {
            char buf[max_line];
            ssize_t n = ::recv(it->fd.get(), buf, sizeof buf, 0);
            if (n > 0) it->line.append(buf, static_cast<std::size_t>(n));
            bool complete = it->line.find('\n') != std::string::npos || it->line.size() >= max_line;
            if (complete) {
                // A status reply is a few KiB and the socket buffer far larger: one send, no waiting.
                std::string reply = render(it->line.rfind("json", 0) == 0);
                (void)::send(it->fd.get(), reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            }
            done = complete || n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
        }
        done = done || now >= it->deadline;
        it = done ? clients_.erase(it) : std::next(it);
    }
    if (first < fds.size() && (fds[first].revents & POLLIN)) accept_clients(now);
}

std::string query_status(const std::filesystem::path& path, bool json) {
    auto addr = unix_addr(path);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
        throw Error(ExitCode::unavailable, "nothing answers on " + path.string() + ": " + std::strerror(errno));
    timeval tv{10, 0};  // a live instance answers in one turn of its loop
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string req = json ? "json\n" : "text\n";
    (void)::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL);
    std::string out;
    char buf[8192];
    constexpr std::size_t cap = 4 << 20;  // a status reply larger than this is not one
    for (;;) {
        ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(ExitCode::unavailable, "no status reply on " + path.string() + ": " + std::strerror(errno));
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > cap) throw Error(ExitCode::data, "status reply too large");
    }
    if (out.empty()) throw Error(ExitCode::unavailable, "the instance on " + path.string() + " closed without a status");
    return out;
}

}  // namespace tn::forward
