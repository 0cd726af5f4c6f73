// The control sockets' request/reply format (base/control_line.hpp), and its client against a real
// Unix socket.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "base/control_line.hpp"
#include "base/error.hpp"
#include "base/unique_fd.hpp"

using namespace tn;
using Words = std::vector<std::string>;

namespace {

UniqueFd listen_at(const std::string& path) {
    UniqueFd srv(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path.c_str());
    REQUIRE(::bind(srv.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(srv.get(), 1) == 0);
    return srv;
}

}  // namespace

TEST_CASE("a request is its words joined by 0x1f on one line") {
    CHECK(encode_control_request({"status", "json"}) == "status\x1fjson\n");
    CHECK(encode_control_request({"serve", "my app", "8080"}) ==
          "serve\x1fmy app\x1f"
          "8080\n");
    CHECK(encode_control_request({}) == "\n");
    CHECK(decode_control_request("status\x1fjson") == Words{"status", "json"});
    CHECK(decode_control_request("json") == Words{"json"});
    CHECK(decode_control_request("").empty());
    CHECK(decode_control_request("a\x1f\x1f") == Words{"a", "", ""});  // empty words survive
}

TEST_CASE("a word that would break the line is refused") {
    CHECK_THROWS_AS(encode_control_request({"a\nb"}), Error);
    CHECK_THROWS_AS(encode_control_request({"a\x1f"
                                            "b"}),
                    Error);
}

TEST_CASE("a reply is its code on a line, then the body") {
    CHECK(encode_control_reply({0, "name office\n"}) == "0\nname office\n");
    auto r = decode_control_reply("77\nrefused\n");
    CHECK(r.code == 77);
    CHECK(r.body == "refused\n");
    CHECK(decode_control_reply("0\n").body.empty());
    CHECK_THROWS_AS(decode_control_reply(""), Error);               // a daemon that closed unanswered
    CHECK_THROWS_AS(decode_control_reply("name office\n"), Error);  // no code line
    CHECK_THROWS_AS(decode_control_reply("256\n"), Error);          // not an exit code
    CHECK_THROWS_AS(decode_control_reply("0"), Error);              // no newline after the code
}

TEST_CASE("control_ask talks to a real socket; nothing listening is 'unavailable'") {
    char tmpl[] = "/tmp/tn-ctl-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl));
    std::string dir = tmpl, path = dir + "/s.sock";
    try {
        control_ask(path, {"status"}, "nobody home");
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == ExitCode::unavailable);
        CHECK_THAT(e.what(), Catch::StartsWith("nobody home (" + path + ": "));
    }
    UniqueFd srv = listen_at(path);
    std::string got;
    bool wrote = false;  // Catch2's checks are not for other threads: checked after join
    std::thread t([&] {
        UniqueFd c(::accept(srv.get(), nullptr, nullptr));
        char buf[256];
        while (got.find('\n') == std::string::npos) {
            auto n = ::read(c.get(), buf, sizeof buf);
            if (n <= 0) break;
            got.append(buf, static_cast<std::size_t>(n));
        }
        auto reply = encode_control_reply({3, "no such serve\n"});
        wrote = ::write(c.get(), reply.data(), reply.size()) == static_cast<ssize_t>(reply.size());
    });
    auto r = control_ask(path, {"show", "serve x"}, "nobody home");
    t.join();
    CHECK(wrote);
    CHECK(got == "show\x1fserve x\n");
    CHECK(r.code == 3);
    CHECK(r.body == "no such serve\n");
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
}

TEST_CASE("control_ask gives up on a daemon that accepts and never answers") {
    char tmpl[] = "/tmp/tn-ctl-test-XXXXXX";  // mkdtemp(3)'s template: a private dir for the socket
    REQUIRE(::mkdtemp(tmpl));
    std::string dir = tmpl, path = dir + "/s.sock";
    UniqueFd srv = listen_at(path);
    // A stuck daemon: it takes the request and holds the connection open until the client leaves.
    std::thread t([&] {
        UniqueFd c(::accept(srv.get(), nullptr, nullptr));
        char buf[256];
        while (::read(c.get(), buf, sizeof buf) > 0) {}
    });
    try {
        control_ask(path, {"status"}, "nobody home", std::chrono::seconds(1));
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == ExitCode::unavailable);
        CHECK_THAT(e.what(), Catch::StartsWith("no reply within 1 s on " + path));
    }
    t.join();
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
}
