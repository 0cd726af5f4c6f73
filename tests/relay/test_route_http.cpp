// tn-route's HTTP head parser, responses and Basic auth (tools/tn-route/http_head.hpp): caps,
// malformed input, Host handling, constant-time credential checks.
#include <catch2/catch.hpp>

#include "http_head.hpp"

using namespace tn::route::http;

TEST_CASE("a complete head parses; an incomplete one asks for more") {
    std::string req = "GET /a?b=1 HTTP/1.1\r\nHost: WWW.example.com:8080\r\nUser-Agent:  curl/7 \r\n\r\nBODY";
    for (std::size_t n = 0; n < req.size() - 4; ++n) CHECK(parse_request(std::string_view(req).substr(0, n)).state == State::need_more);
    auto p = parse_request(req);
    REQUIRE(p.state == State::done);
    CHECK(p.req.method == "GET");
    CHECK(p.req.target == "/a?b=1");
    CHECK(p.req.path() == "/a");
    CHECK(p.req.version == "HTTP/1.1");
    CHECK(*p.req.header("host") == "WWW.example.com:8080");
    CHECK(*p.req.header("user-agent") == "curl/7");
    CHECK(p.req.header("cookie") == nullptr);
    CHECK(p.req.head_size == req.size() - 4);
}

TEST_CASE("bare LF line ends are accepted") {
    auto p = parse_request("GET / HTTP/1.0\nX: y\n\n");
    REQUIRE(p.state == State::done);
    CHECK(*p.req.header("x") == "y");
    CHECK(p.req.header("host") == nullptr);  // HTTP/1.0 may omit Host
}

TEST_CASE("malformed heads are 400 with a reason") {
    auto check = [](std::string s, std::string why) {
        auto p = parse_request(s);
        CHECK(p.state == State::bad);
        CHECK(p.status == 400);
        CHECK_THAT(p.why, Catch::Contains(why));
    };
    check("GET /\r\n\r\n", "request line");
    check("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "request line");
    check("GET \x7f HTTP/1.1\r\nHost: a\r\n\r\n", "target");
    check("GET / HTTP/1.1 x\r\nHost: a\r\n\r\n", "request line");
    check("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "method");
    check("GET / HTTP/2.0\r\nHost: a\r\n\r\n", "HTTP/1.0");
    check("GET / HTTP/1.1\r\n\r\n", "without a Host");
    check("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host");
    check("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", "folding");
    check("GET / HTTP/1.1\r\nHost a\r\n\r\n", "header line");
    check("GET / HTTP/1.1\r\nBad Name: a\r\nHost: a\r\n\r\n", "header line");
    check("GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", "control character");
    check("GET / HTTP/1.1\rHost: a\r\n\r\n", "bare CR");
}

TEST_CASE("oversized heads are 431, before and after the blank line arrives") {
    std::string big = "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(kMaxHead, 'x');
    auto p = parse_request(big);
    CHECK(p.state == State::bad);
    CHECK(p.status == 431);
    p = parse_request(big + "\r\n\r\n");
    CHECK(p.status == 431);
    std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
    for (std::size_t i = 0; i < kMaxHeaders + 1; ++i) many += "X: 1\r\n";
    p = parse_request(many + "\r\n");
    CHECK(p.status == 431);
    // Just under the cap is fine.
    std::string fits = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    fits += std::string(kMaxHead - fits.size() - 4, 'y') + "\r\n\r\n";
    CHECK(fits.size() == kMaxHead);
    CHECK(parse_request(fits).state == State::done);
}

TEST_CASE("responses carry length, close and escaped detail") {
    auto r = response(200, "text/plain", "hello", {"X-A: b"});
    CHECK(r.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK_THAT(r, Catch::Contains("Content-Length: 5\r\n") && Catch::Contains("Connection: close\r\n") &&
                      Catch::Contains("X-A: b\r\n\r\nhello"));
    CHECK(response(200, "text/plain", "hello", {}, true).find("hello") == std::string::npos);
    auto e = error_page(404, "no <serve> for host");
    CHECK(e.rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
    CHECK_THAT(e, Catch::Contains("no &lt;serve&gt; for host"));
    CHECK(html_escape("a&'\"") == "a&amp;&#39;&quot;");
}

TEST_CASE("basic auth accepts exactly the configured pair") {
    std::string ok = "Basic YWRtaW46czNjcmV0";  // admin:s3cret
    CHECK(basic_auth_ok(&ok, "admin", "s3cret"));
    std::string lower_scheme = "basic YWRtaW46czNjcmV0";
    CHECK(basic_auth_ok(&lower_scheme, "admin", "s3cret"));
    CHECK_FALSE(basic_auth_ok(&ok, "admin", "s3cre"));
    CHECK_FALSE(basic_auth_ok(&ok, "Admin", "s3cret"));
    CHECK_FALSE(basic_auth_ok(nullptr, "admin", "s3cret"));
    std::string pad = "Basic YTpi";  // a:b (no padding)
    CHECK(basic_auth_ok(&pad, "a", "b"));
    std::string pad2 = "Basic YTpiYw==";  // a:bc
    CHECK(basic_auth_ok(&pad2, "a", "bc"));
    CHECK_FALSE(basic_auth_ok(&pad2, "a", "bcd"));
    std::string garbage = "Basic !!!!";
    CHECK_FALSE(basic_auth_ok(&garbage, "a", "b"));
    std::string bearer = "Bearer YWRtaW46czNjcmV0";
    CHECK_FALSE(basic_auth_ok(&bearer, "admin", "s3cret"));
    std::string empty = "Basic ";
    CHECK_FALSE(basic_auth_ok(&empty, "", ""));
}
