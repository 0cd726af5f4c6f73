// tn-route's HTTP request head parser and Basic auth (tools/tn-route/http_head) against what any
// internet client may send to a vhost or dashboard port. Checks the parser's promises: a head it
// accepts lies inside the bytes given, a prefix of it is never a different request, and at most
// kMaxHead bytes are ever needed to decide.
#include <cstdint>
#include <string>
#include <string_view>

#include "tools/tn-route/http_head.hpp"

using namespace tn::route::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view buf(reinterpret_cast<const char*>(data), size);
    Parse p = parse_request(buf);
    if (p.state == State::done) {
        if (p.req.head_size == 0 || p.req.head_size > buf.size() || p.req.head_size > kMaxHead) __builtin_trap();
        if (p.req.headers.size() > kMaxHeaders) __builtin_trap();
        (void)p.req.path();
        (void)p.req.header("host");
        (void)basic_auth_ok(p.req.header("authorization"), "admin", "s3cret");
        (void)html_escape(p.req.target);
        // The same head read in two pieces (the route parses whatever has arrived so far).
        Parse early = parse_request(buf.substr(0, p.req.head_size - 1));
        if (early.state == State::done) __builtin_trap();
        Parse exact = parse_request(buf.substr(0, p.req.head_size));
        if (exact.state != State::done || exact.req.head_size != p.req.head_size) __builtin_trap();
    } else if (p.state == State::bad) {
        if (p.status != 400 && p.status != 431) __builtin_trap();
        (void)error_page(p.status, p.why);
    } else if (buf.size() > kMaxHead) {
        __builtin_trap();  // need_more past the cap: a client could make us buffer without end
    }
    // The raw bytes as an Authorization value, to reach the base64 decoder directly.
    std::string auth(buf);
    (void)basic_auth_ok(&auth, "admin", "s3cret");
    (void)response(200, "text/plain", buf, {}, size % 2 == 0);
    return 0;
}
