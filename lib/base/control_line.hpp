// The request/reply format of every tn daemon's control socket (tn-route, tn-vnet, tn-tun, tn-forward; the
// socket itself: control_socket.hpp). A request is one line: its words joined by 0x1f (unit
// separator: a word may hold spaces, never a newline or 0x1f), then '\n'. A reply is the exit code
// the client ends with, on a line of its own, then the body; the daemon closes after it.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace tn {

inline constexpr std::size_t kControlRequestMax = 4096;       // a command line
inline constexpr std::size_t kControlReplyMax = 16u << 20;    // a status of thousands of rows
inline constexpr std::chrono::seconds kControlReplyWait{30};  // the client gives up after this

struct ControlReply {
    int code = 0;  // 0: the body goes to stdout; otherwise the client's exit code, the body to stderr
    std::string body;
};

// The request line of `words`, with its '\n'. Throws tn::Error(usage) for a word with a newline or 0x1f.
std::string encode_control_request(const std::vector<std::string>& words);
// The words of a request line (without its '\n'); an empty line has none.
std::vector<std::string> decode_control_request(std::string_view line);
std::string encode_control_reply(const ControlReply& r);
// Throws tn::Error(data) for a reply without its code line or with a code outside 0..255.
ControlReply decode_control_reply(std::string_view raw);

// The client side: connects to `path`, sends `words`, reads the reply to its end (at most
// kControlReplyMax bytes). Throws tn::Error(unavailable) "`not_running` (PATH: reason)" when nothing
// listens there, tn::Error(unavailable) when no reply ends within `wait`, tn::Error(data) for a malformed or oversized reply.
ControlReply control_ask(const std::filesystem::path& path, const std::vector<std::string>& words,
                         std::string_view not_running, std::chrono::seconds wait = kControlReplyWait);

}  // namespace tn
