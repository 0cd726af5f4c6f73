// The little HTTP/1.x tn-route needs (vhost routing by Host, the dashboard): a capped request-head
// parser, response text, Basic auth checked in constant time. No I/O: bytes in, decisions out.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tn::route::http {

// A request head larger than this is refused with 431 before more is read: a vhost or dashboard
// client cannot make the route buffer more than this per connection.
inline constexpr std::size_t kMaxHead = 16 * 1024;
inline constexpr std::size_t kMaxHeaders = 100;

struct Request {
    std::string method, target, version;
    std::vector<std::pair<std::string, std::string>> headers;  // names lowercased, values trimmed
    std::size_t head_size = 0;                                 // bytes up to and including the blank line
    // The value of header `name` (lowercase), or nullptr when absent.
    const std::string* header(std::string_view name) const;
    // The target without its query string.
    std::string path() const;
};

enum class State { need_more, done, bad };

struct Parse {
    State state = State::need_more;
    Request req;
    int status = 0;   // 400 (malformed) or 431 (too large) when bad
    std::string why;  // what was wrong, for the log
};

// Parses the head at the start of `buf` (every byte received so far). need_more: no blank line yet and
// under kMaxHead. A request must have exactly one Host header when it is HTTP/1.1.
Parse parse_request(std::string_view buf);

std::string_view reason(int status);
// A complete response with Content-Length and Connection: close; `extra` lines are "Name: value".
std::string response(int status, std::string_view content_type, std::string_view body,
                     const std::vector<std::string>& extra = {}, bool head_only = false);
// A small HTML error page for `status` with one line of explanation.
std::string error_page(int status, std::string_view detail);
std::string html_escape(std::string_view s);

// True when `authorization` (the header value, or nullptr) is "Basic base64(user:password)" for
// exactly this user and password. The comparison takes the same time wherever the bytes differ.
bool basic_auth_ok(const std::string* authorization, std::string_view user, std::string_view password);

}  // namespace tn::route::http
