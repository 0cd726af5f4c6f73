// The control sockets' line format and its blocking client (control_line.hpp).
#include "base/control_line.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.hpp"
#include "base/strings.hpp"
#include "base/unique_fd.hpp"

namespace tn {

std::string encode_control_request(const std::vector<std::string>& words) {
    std::string line;
    for (std::size_t i = 0; i < words.size(); ++i) {
        if (words[i].find_first_of("\n\x1f") != std::string::npos)
            throw Error(ExitCode::usage, "a control command word may not hold a newline or 0x1f");
        if (i) line += '\x1f';
        line += words[i];
    }
    return line + "\n";
}

std::vector<std::string> decode_control_request(std::string_view line) {
    if (line.empty()) return {};
    return split(line, '\x1f');
}

std::string encode_control_reply(const ControlReply& r) { return std::to_string(r.code) + "\n" + r.body; }

ControlReply decode_control_reply(std::string_view raw) {
    auto nl = raw.find('\n');
    auto code = nl == std::string_view::npos ? std::nullopt : parse_int(raw.substr(0, nl), 0, 255);
    if (!code) throw Error(ExitCode::data, "malformed reply on the control socket");
    return {static_cast<int>(*code), std::string(raw.substr(nl + 1))};
}

ControlReply control_ask(const std::filesystem::path& path, const std::vector<std::string>& words,
                         std::string_view not_running, std::chrono::seconds wait) {
    auto request = encode_control_request(words);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.native().size() >= sizeof a.sun_path)
        throw Error(ExitCode::usage, "control socket path too long: " + path.string());
    std::memcpy(a.sun_path, path.c_str(), path.native().size());
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        throw Error(ExitCode::unavailable,
                    std::string(not_running) + " (" + path.string() + ": " + std::strerror(errno) + ")");
    // A daemon stuck in a long step must not hang a status line in a cron job or a shell prompt.
    timeval limit{static_cast<time_t>(wait.count()), 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    for (std::string_view rest = request; !rest.empty();) {
        ssize_t n = ::send(fd.get(), rest.data(), rest.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // the daemon closed early: its reply (if any) says why
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    std::string reply;
    char buf[8192];
    for (;;) {
        ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            throw Error(ExitCode::unavailable,
                        "no reply within " + std::to_string(wait.count()) + " s on " + path.string());
        if (n <= 0) break;
        reply.append(buf, static_cast<std::size_t>(n));
        if (reply.size() > kControlReplyMax) throw Error(ExitCode::data, "control reply too large");
    }
    return decode_control_reply(reply);
}

}  // namespace tn
