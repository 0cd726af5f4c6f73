// Unit tests for serve --stdio's protocol layer: line splitting with the length cap, request
// parsing (id kept for the answer, fields checked by type) and strict base64.
#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "serve_proto.hpp"

using namespace tn;
using namespace tn::exec;

TEST_CASE("LineSplitter cuts lines across chunks and drops an overlong one to its newline") {
    LineSplitter s(5);
    std::vector<std::string> lines;
    int too_long = 0;
    auto on_line = [&](const std::string& l) { lines.push_back(l); };
    s.feed("ab\ncd", on_line, [&] { ++too_long; });
    s.feed("e\n\n0123456789", on_line, [&] { ++too_long; });
    s.feed("xyz\nlast", on_line, [&] { ++too_long; });
    s.finish(on_line);
    CHECK(lines == std::vector<std::string>{"ab", "cde", "last"});
    CHECK(too_long == 1);
}

TEST_CASE("LineSplitter hands over raw data announced by a line, across chunks, then lines again") {
    LineSplitter s(64);
    std::vector<std::string> lines, data;
    std::vector<bool> skipped;
    std::function<void(const std::string&)> on_line = [&](const std::string& l) {
        lines.push_back(l);
        if (l == "put5") s.take_raw(5, 100, [&](std::string&& d, bool skip) { data.push_back(d), skipped.push_back(skip); });
        if (l == "put0") s.take_raw(0, 100, [&](std::string&& d, bool skip) { data.push_back(d), skipped.push_back(skip); });
        if (l == "big") s.take_raw(7, 3, [&](std::string&& d, bool skip) { data.push_back(d), skipped.push_back(skip); });
    };
    auto too_long = [] {};
    s.feed("put5\na\nb", on_line, too_long);
    s.feed("\ncnext\nput0\nbig\n0123", on_line, too_long);
    s.feed("456after\nput5\nab", on_line, too_long);
    s.finish(on_line);
    CHECK(lines == std::vector<std::string>{"put5", "next", "put0", "big", "after", "put5"});
    CHECK(data == std::vector<std::string>{"a\nb\nc", "", ""});  // the skipped 7 are not kept
    CHECK(skipped == std::vector<bool>{false, false, true});
    CHECK(s.raw_missing() == 3);  // the last put5 got 2 of its 5 bytes
}

TEST_CASE("parse_request takes data_bytes first, for put only, instead of data") {
    ServeRequest r;
    parse_request(R"({"id":"1","op":"put","host":"h","path":"p","data_bytes":1048576})", r);
    CHECK(r.data_bytes == std::optional<std::uint64_t>(1048576));
    CHECK(r.data.empty());
    ServeRequest g;
    parse_request(R"({"op":"get","host":"h","path":"p","raw":true})", g);
    CHECK(g.raw);
    // Refused, but the count is kept: serve still takes the announced bytes off the stream.
    for (auto* line : {R"({"op":"get","host":"h","path":"p","data_bytes":3})", R"({"op":"nope","data_bytes":3})",
                       R"({"op":"put","host":"h","path":"p","data":"YQ==","data_bytes":3})"}) {
        ServeRequest x;
        CHECK_THROWS_AS(parse_request(line, x), ParseError);
        CHECK(x.data_bytes == std::optional<std::uint64_t>(3));
    }
    for (auto* line : {R"({"op":"put","host":"h","data_bytes":-1})", R"({"op":"put","host":"h","data_bytes":"1e3"})",
                       R"({"op":"put","host":"h","data_bytes":1234567890123456})"}) {
        ServeRequest x;
        CHECK_THROWS_AS(parse_request(line, x), ParseError);
        CHECK_FALSE(x.data_bytes);
    }
}

TEST_CASE("parse_request keeps the id and checks fields") {
    ServeRequest r;
    parse_request(R"({"id":"7","op":"run","host":"h","command":"ls","timeout":2.5,"stdin":"aGk="})", r);
    CHECK(r.id == "\"7\"");
    CHECK(r.command == "ls");
    CHECK(r.timeout == 2.5);
    CHECK(r.stdin_data == std::optional<std::string>("hi"));
    ServeRequest bad;
    CHECK_THROWS_AS(parse_request(R"({"id":"8","op":"nope","host":"h"})", bad), ParseError);
    CHECK(bad.id == "\"8\"");
    ServeRequest su;
    parse_request(R"({"op":"run","host":"h","command":"id","sudo":true})", su);
    CHECK(su.sudo == std::optional<std::string>(""));
    parse_request(R"({"op":"run","host":"h","command":"id","sudo_user":"bob"})", su);
    CHECK(su.sudo == std::optional<std::string>("bob"));
    ServeRequest m;
    parse_request(R"({"op":"chmod","host":"h","path":"p","mode":"0755"})", m);
    CHECK(m.mode == 0755);
    CHECK(m.id == "null");
    for (auto* line : {R"({"op":"chmod","host":"h","mode":"9"})", R"({"op":"chmod","host":"h","mode":"17777"})",
                       R"({"op":"run","host":"h"})", R"({"op":"run","host":"h","command":"x","timeout":"-1"})",
                       R"({"op":"run","host":"h","command":{"a":1}})", R"({"op":"ls","host":"h","recursive":"yes"})",
                       R"({"op":"mv","host":"h","path":"a"})", R"({"op":"ls"})"}) {
        ServeRequest x;
        CHECK_THROWS_AS(parse_request(line, x), ParseError);
    }
    ServeRequest y;
    CHECK_THROWS_AS(parse_request("[1,2", y), Error);
    CHECK_THROWS_AS(parse_request(R"({"op":"put","host":"h","data":"a=bc"})", y), Error);
}

TEST_CASE("base64 is strict and round-trips") {
    CHECK(b64_decode("") == "");
    CHECK(b64_decode("AP9i") == std::string("\x00\xff" "b", 3));
    CHECK(b64_decode("YQ==") == "a");
    CHECK(b64_decode("YWI=") == "ab");
    for (auto* bad : {"YQ=", "Y===", "=YWI", " YWI", "YW I", "YQ=a", "YW\nI", "gop="}) CHECK_THROWS_AS(b64_decode(bad), Error);
    std::string all;
    for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
    CHECK(b64_decode(b64_encode(all)) == all);
}
