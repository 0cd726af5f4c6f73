// The control socket: non-blocking on the server side (it shares the forwarding thread), with bounded
// requests and replies in the format of every tn daemon (base/control_line.hpp), and only the
// instance's own user served (base/control_socket.hpp).
#include "control.hpp"

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "base/control_line.hpp"
#include "base/control_socket.hpp"
#include "base/error.hpp"

namespace tn::forward {
namespace {

constexpr std::size_t max_pending = 8;         // status clients waiting for their request line
constexpr std::chrono::seconds line_wait{1};  // a status client sends its line at once

// The reply to one request line (control_line.hpp's format): `status` or `status json`.
ControlReply answer(std::string_view line, const ControlServer::Render& render) {
    auto words = decode_control_request(line);
    bool json = words.size() == 2 && words[1] == "json";
    if (words.empty() || words[0] != "status" || (words.size() == 2 && !json) || words.size() > 2)
        return {static_cast<int>(ExitCode::usage), "tn-forward's control socket answers only `status [json]`\n"};
    return {0, render(json)};
}

}  // namespace

ControlServer::ControlServer(std::filesystem::path path) : path_(std::move(path)), fd_(bind_control_socket(path_)) {
    int flags = ::fcntl(fd_.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd_.get(), F_SETFL, flags | O_NONBLOCK) < 0)
        throw Error(ExitCode::io, "control socket " + path_.string() + ": " + std::strerror(errno));
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
        if (!peer_is_owner(c.get()) || clients_.size() >= max_pending) continue;  // closed unanswered
        clients_.push_back(Client{std::move(c), {}, now + line_wait});
    }
}

void ControlServer::handle(const std::vector<pollfd>& fds, std::size_t first, Clock::time_point now,
                           const Render& render) {
    std::size_t i = first + 1;
    for (auto it = clients_.begin(); it != clients_.end(); ++i) {
        bool done = false;
        if (i < fds.size() && fds[i].fd == it->fd.get() && fds[i].revents != 0) {
            char buf[512];
            ssize_t n = ::recv(it->fd.get(), buf, sizeof buf, 0);
            if (n > 0) it->line.append(buf, static_cast<std::size_t>(n));
            auto nl = it->line.find('\n');
            bool complete = nl != std::string::npos || it->line.size() > kControlRequestMax;
            if (complete) {
                auto reply = it->line.size() > kControlRequestMax && nl == std::string::npos
                                 ? ControlReply{static_cast<int>(ExitCode::usage), "control request too long\n"}
                                 : answer(std::string_view(it->line).substr(0, nl), render);
                // A status reply is a few KiB and the socket buffer far larger: one send, no waiting.
                auto raw = encode_control_reply(reply);
                (void)::send(it->fd.get(), raw.data(), raw.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            }
            done = complete || n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
        }
        done = done || now >= it->deadline;
        it = done ? clients_.erase(it) : std::next(it);
    }
    if (first < fds.size() && (fds[first].revents & POLLIN)) accept_clients(now);
}

std::string query_status(const std::filesystem::path& path, bool json) {
    auto r = control_ask(path, json ? std::vector<std::string>{"status", "json"} : std::vector<std::string>{"status"},
                         "no tn-forward answers");
    if (r.code != 0) throw Error(static_cast<ExitCode>(r.code), r.body);
    if (r.body.empty()) throw Error(ExitCode::unavailable, "the instance on " + path.string() + " closed without a status");
    return r.body;
}

}  // namespace tn::forward
