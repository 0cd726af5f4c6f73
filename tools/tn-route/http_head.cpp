// HTTP/1.x request-head parsing with caps, responses and Basic auth for tn-route (see http_head.hpp).
#include "http_head.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "base/base64.hpp"
#include "relay/digest.hpp"

namespace tn::route::http {

namespace {
// RFC 9110 token characters (methods and header names).
bool tchar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
bool token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), tchar); }

std::string lower(std::string_view s) {
    std::string o(s);
    for (auto& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return o;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

Parse bad(int status, std::string why) {
    Parse p;
    p.state = State::bad;
    p.status = status;
    p.why = std::move(why);
    return p;
}

}  // namespace

const std::string* Request::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (k == name) return &v;
    return nullptr;
}

std::string Request::path() const { return target.substr(0, target.find('?')); }

Parse parse_request(std::string_view buf) {
    // Lines end in CRLF; a bare LF is accepted too (RFC 9112 §2.2 allows it), a bare CR is not.
    auto end = buf.find("\r\n\r\n");
    std::size_t head_size = end == std::string_view::npos ? 0 : end + 4;
    if (auto lf = buf.find("\n\n"); lf != std::string_view::npos && (head_size == 0 || lf + 2 < head_size)) head_size = lf + 2;
    if (head_size == 0) {
        if (buf.size() >= kMaxHead) return bad(431, "request head over " + std::to_string(kMaxHead) + " bytes");
        return {};
    }
    if (head_size > kMaxHead) return bad(431, "request head over " + std::to_string(kMaxHead) + " bytes");
    Parse p;
    p.req.head_size = head_size;
    std::string_view head = buf.substr(0, head_size);
    std::vector<std::string_view> lines;
    for (std::size_t pos = 0; pos < head.size();) {
        auto nl = head.find('\n', pos);
        auto line = head.substr(pos, nl - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.find('\r') != std::string_view::npos) return bad(400, "bare CR in the request head");
        lines.push_back(line);
        pos = nl + 1;
    }
    while (!lines.empty() && lines.back().empty()) lines.pop_back();
    if (lines.empty()) return bad(400, "empty request");
    // Request line: METHOD SP target SP HTTP/1.x
    auto rl = lines[0];
    auto sp1 = rl.find(' ');
    auto sp2 = sp1 == std::string_view::npos ? sp1 : rl.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || rl.find(' ', sp2 + 1) != std::string_view::npos)
        return bad(400, "malformed request line");
    p.req.method = std::string(rl.substr(0, sp1));
    p.req.target = std::string(rl.substr(sp1 + 1, sp2 - sp1 - 1));
    p.req.version = std::string(rl.substr(sp2 + 1));
    if (!token(p.req.method)) return bad(400, "malformed method");
    if (p.req.target.empty() || std::any_of(p.req.target.begin(), p.req.target.end(),
                                            [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; }))
        return bad(400, "malformed request target");
    if (p.req.version != "HTTP/1.1" && p.req.version != "HTTP/1.0") return bad(400, "not HTTP/1.0 or HTTP/1.1");
    if (lines.size() - 1 > kMaxHeaders) return bad(431, "more than " + std::to_string(kMaxHeaders) + " header lines");
    int hosts = 0;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        auto l = lines[i];
        if (l.empty()) return bad(400, "empty line inside the head");
        if (l.front() == ' ' || l.front() == '\t') return bad(400, "obsolete header line folding");
        auto colon = l.find(':');
        if (colon == std::string_view::npos || !token(l.substr(0, colon))) return bad(400, "malformed header line");
        auto value = trim(l.substr(colon + 1));
        if (std::any_of(value.begin(), value.end(), [](char c) { return (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f; }))
            return bad(400, "control character in a header value");
        p.req.headers.emplace_back(lower(l.substr(0, colon)), std::string(value));
        if (p.req.headers.back().first == "host") ++hosts;
    }
    if (hosts > 1) return bad(400, "more than one Host header");
    if (hosts == 0 && p.req.version == "HTTP/1.1") return bad(400, "HTTP/1.1 request without a Host header");
    p.state = State::done;
    return p;
}

std::string_view reason(int status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 431: return "Request Header Fields Too Large";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        default: return "Error";
    }
}

std::string response(int status, std::string_view content_type, std::string_view body, const std::vector<std::string>& extra,
                     bool head_only) {
    std::string r = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason(status)) + "\r\n";
    r += "Content-Type: " + std::string(content_type) + "\r\n";
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    r += "Cache-Control: no-store\r\nConnection: close\r\n";
    for (const auto& e : extra) r += e + "\r\n";
    r += "\r\n";
    if (!head_only) r += body;
    return r;
}

std::string html_escape(std::string_view s) {
    std::string o;
    for (char c : s) {
        switch (c) {
            case '&': o += "&amp;"; break;
            case '<': o += "&lt;"; break;
            case '>': o += "&gt;"; break;
            case '"': o += "&quot;"; break;
            case '\'': o += "&#39;"; break;
            default: o += c;
        }
    }
    return o;
}

std::string error_page(int status, std::string_view detail) {
    auto title = std::to_string(status) + " " + std::string(reason(status));
    auto body = "<!doctype html>\n<html><head><title>" + title + "</title></head><body><h1>" + title + "</h1><p>" +
                html_escape(detail) + "</p><hr><p>tn-route</p></body></html>\n";
    return response(status, "text/html; charset=utf-8", body);
}

bool basic_auth_ok(const std::string* authorization, std::string_view user, std::string_view password) {
    std::string given;
    if (authorization && authorization->size() > 6 && lower(authorization->substr(0, 6)) == "basic ") {
        std::string_view b64 = trim(std::string_view(*authorization).substr(6));
        // Credentials longer than a head can hold are not credentials.
        if (b64.size() <= kMaxHead) given = base64_decode(b64).value_or("");
    }
    std::string want = std::string(user) + ":" + std::string(password);
    // Compare fixed-size digests so neither the position of the first difference nor the length of
    // the password shows in the time taken.
    auto a = relay::sha256(given), b = relay::sha256(want);
    bool same = relay::equal_bytes(a, b);
    return same && !given.empty();
}

}  // namespace tn::route::http
