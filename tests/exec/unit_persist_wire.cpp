// Unit tests of the --persist socket framing: round trips with descriptors, and the caps and
// checks that keep a foreign or hostile peer from making the master allocate or misparse; which
// other-version master a client may stop.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "base/error.hpp"
#include "persist_stale.hpp"
#include "persist_sudo.hpp"
#include "persist_wire.hpp"

using namespace tn;
using namespace tn::exec;

namespace {

struct Pair {
    UniqueFd a, b;
    Pair() {
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        a = UniqueFd(sv[0]);
        b = UniqueFd(sv[1]);
    }
};

void raw_send(int fd, const std::string& bytes) { REQUIRE(::write(fd, bytes.data(), bytes.size()) == ssize_t(bytes.size())); }

}  // namespace

TEST_CASE("a frame carries its payload and descriptors") {
    Pair p;
    std::string payload;
    wire::put_str(payload, "run");
    wire::put_u32(payload, 7);
    wire::put_str(payload, std::string(100000, 'x'));  // more than one socket read
    int pipefd[2];
    REQUIRE(::pipe2(pipefd, O_CLOEXEC) == 0);
    UniqueFd r(pipefd[0]), w(pipefd[1]);
    wire::send_frame(p.a.get(), payload, {w.get()});
    std::vector<UniqueFd> fds;
    std::string got = wire::recv_frame(p.b.get(), &fds);
    REQUIRE(got == payload);
    REQUIRE(fds.size() == 1);
    REQUIRE(::write(fds[0].get(), "z", 1) == 1);  // the passed descriptor is the pipe's write end
    char c = 0;
    REQUIRE(::read(r.get(), &c, 1) == 1);
    REQUIRE(c == 'z');
    wire::Reader rd{got};
    REQUIRE(rd.str() == "run");
    REQUIRE(rd.u32() == 7);
    REQUIRE(rd.str().size() == 100000);
    REQUIRE_THROWS_AS(rd.u32(), Error);  // past the end
}

TEST_CASE("a string longer than what is left is refused") {
    std::string payload;
    wire::put_u32(payload, 50);
    payload += "short";
    wire::Reader rd{payload};
    REQUIRE_THROWS_AS(rd.str(), Error);
}

TEST_CASE("foreign, old and oversized frames are refused before any allocation") {
    SECTION("another protocol") {
        Pair p;
        raw_send(p.a.get(), "SSH-2.0-x\r\n");
        REQUIRE_THROWS_WITH(wire::recv_frame(p.b.get(), nullptr), Catch::Contains("not a tn-exec master"));
    }
    SECTION("a version-1 master's reply: a VersionMismatch that names its version") {
        Pair p;
        raw_send(p.a.get(), std::string("TNX1\0\0\0\6exit 0", 14));
        try {
            wire::recv_frame(p.b.get(), nullptr);
            FAIL("no error");
        } catch (const wire::VersionMismatch& e) {
            REQUIRE(e.theirs() == "TNX1");
            REQUIRE(!e.newer());
            REQUIRE(e.code() == ExitCode::data);
            REQUIRE_THAT(e.what(), Catch::Contains("protocol TNX1"));
        }
    }
    SECTION("a later version's reply is newer") {
        Pair p;
        raw_send(p.a.get(), std::string("TNX5\0\0\0\6exit 0", 14));
        try {
            wire::recv_frame(p.b.get(), nullptr);
            FAIL("no error");
        } catch (const wire::VersionMismatch& e) {
            REQUIRE(e.newer());
        }
    }
    SECTION("TNX and a non-digit is foreign, not another version") {
        Pair p;
        raw_send(p.a.get(), std::string("TNXz\0\0\0\0", 8));
        REQUIRE_THROWS_WITH(wire::recv_frame(p.b.get(), nullptr), Catch::Contains("not a tn-exec master"));
    }
    SECTION("a length over the cap") {
        Pair p;
        raw_send(p.a.get(), std::string("TNX4\x7f\xff\xff\xff", 8));
        REQUIRE_THROWS_WITH(wire::recv_frame(p.b.get(), nullptr), Catch::Contains("too large"));
    }
    SECTION("a peer that closes mid-frame") {
        Pair p;
        raw_send(p.a.get(), std::string("TNX4\0\0\0\x10" "abc", 11));
        p.a.reset();
        try {
            wire::recv_frame(p.b.get(), nullptr);
            FAIL("no error");
        } catch (const Error& e) {
            REQUIRE(e.code() == ExitCode::unavailable);
        }
    }
}

TEST_CASE("extra descriptors beyond the cap are closed, not kept") {
    Pair p;
    std::vector<int> many;
    std::vector<UniqueFd> keep;
    for (int i = 0; i < 4; ++i) {
        keep.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        many.push_back(keep.back().get());
    }
    wire::send_frame(p.a.get(), "x", many);
    std::vector<UniqueFd> fds;
    fds.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));  // already one: room for 3 more
    REQUIRE(wire::recv_frame(p.b.get(), &fds) == "x");
    REQUIRE(fds.size() == wire::max_fds);
}

TEST_CASE("nothing listening is an empty descriptor, a long path a usage error") {
    REQUIRE(!wire::try_connect("/nonexistent/tn-exec-test.sock"));
    try {
        wire::try_connect(std::string(200, 'a'));
        FAIL("no error");
    } catch (const Error& e) {
        REQUIRE(e.code() == ExitCode::usage);
    }
}

TEST_CASE("only our own master for this socket may be stopped") {
    const std::filesystem::path sock = "/run/tn/exec-0123456789abcdef.sock";
    MasterIdentity ok{4242, 1000, 4242, {"/usr/bin/tn-exec", "__master", "--socket", sock.string(), "--idle", "60", "h"}};
    REQUIRE(not_ours_reason(ok, sock, 1000).empty());
    SECTION("another user's process") {
        REQUIRE_THAT(not_ours_reason(ok, sock, 0), Catch::Contains("uid 1000"));
    }
    SECTION("no pid file, or one naming another process") {
        auto w = ok;
        w.recorded_pid.reset();
        REQUIRE_THAT(not_ours_reason(w, sock, 1000), Catch::Contains("no pid file"));
        w.recorded_pid = 4243;
        REQUIRE_THAT(not_ours_reason(w, sock, 1000), Catch::Contains("names 4243"));
    }
    SECTION("not a master, or a master of another socket") {
        auto w = ok;
        w.argv = {"socat", "UNIX-LISTEN:" + sock.string(), "-"};
        REQUIRE_THAT(not_ours_reason(w, sock, 1000), Catch::Contains("not a tn-exec master"));
        w.argv = {"tn-exec", "__master", "--socket", "/run/tn/other.sock"};
        REQUIRE_THAT(not_ours_reason(w, sock, 1000), Catch::Contains("another socket"));
        w.argv = {"tn-exec", "--socket", sock.string(), "__master"};  // the socket must follow __master
        REQUIRE_THAT(not_ours_reason(w, sock, 1000), Catch::Contains("another socket"));
        w.argv = {"tn-exec", "__master", "--socket"};
        REQUIRE_THAT(not_ours_reason(w, sock, 1000), Catch::Contains("another socket"));
    }
}

TEST_CASE("the master asks the client for sudo's password on the request socket") {
    Pair p;
    int pw[2];
    REQUIRE(::pipe2(pw, O_CLOEXEC) == 0);
    raw_send(pw[1], "s3cret\n");
    ::close(pw[1]);
    PasswordOptions o;
    o.fd = pw[0];
    auto source = PasswordSource::make(o);
    // The client's side in a thread (Catch's REQUIRE stays on this one): what it saw and answered.
    std::string seen_prompt;
    bool answered = false, verdict_taken_as_request = true, refused = false;
    std::thread client([&] {
        auto frame = wire::recv_frame(p.b.get(), nullptr);
        seen_prompt = frame;
        answered = answer_password_request(p.b.get(), frame, source.get());
        verdict_taken_as_request = answer_password_request(p.b.get(), "exit 0", source.get());
        refused = answer_password_request(p.b.get(), wire::recv_frame(p.b.get(), nullptr), nullptr);
    });
    auto got = ask_client_for_password(p.a.get(), "[sudo] password for u@h: ");
    bool no_source_is_77 = false;
    try {
        ask_client_for_password(p.a.get(), "again: ");
    } catch (const PasswordError&) {
        no_source_is_77 = true;
    }
    client.join();
    REQUIRE(got->expose() == "s3cret");
    REQUIRE(seen_prompt == "password [sudo] password for u@h: ");
    REQUIRE((answered && refused && !verdict_taken_as_request && no_source_is_77));
}
