// Control socket I/O in base/control_line.hpp's format, with bounded reads on both sides: a request
// line of at most 64 bytes here, a reply of at most kControlReplyMax.
#include "control.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/control_line.hpp"
#include "base/control_socket.hpp"
#include "base/error.hpp"

namespace tn::tuntool {
namespace {

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

ControlServer::ControlServer(std::filesystem::path path) : path_(std::move(path)), fd_(bind_control_socket(path_)) {
    // The data path shares this thread: accept must never block it.
    int flags = ::fcntl(fd_.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd_.get(), F_SETFL, flags | O_NONBLOCK) < 0)
        throw Error(ExitCode::io, "control socket " + path_.string() + ": " + std::strerror(errno));
}

ControlServer::~ControlServer() { ::unlink(path_.c_str()); }

void ControlServer::serve_one(const std::function<ControlReply(std::string_view)>& answer) {
    UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) return;
    if (!peer_is_owner(c.get())) return;  // closed unanswered (base/control_socket.hpp)
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
