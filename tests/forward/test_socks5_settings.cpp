// Unit tests for tn-forward: the SOCKS5 parser (incl. malformed and split input), rules and settings.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "base/backoff.hpp"
#include "base/error.hpp"
#include "settings.hpp"
#include "socks5.hpp"
#include "probe_target.hpp"
#include "sockets.hpp"

using namespace tn;
using namespace tn::forward;
using namespace std::string_literals;

TEST_CASE("SOCKS5 CONNECT to a domain, fed one byte at a time") {
    Socks5 s;
    std::string in = "\x05\x01\x00"s + "\x05\x01\x00\x03\x09localhost\x1f\x90"s + "GET";
    std::string out;
    for (char c : in) out += s.feed(std::string_view(&c, 1));
    CHECK(out == "\x05\x00"s);
    REQUIRE(s.state() == Socks5::State::done);
    CHECK(s.host() == "localhost");
    CHECK(s.port() == 8080);
    CHECK(s.take_leftover() == "GET");
    CHECK(Socks5::reply(true) == "\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00"s);
}

TEST_CASE("SOCKS5 IPv4 and IPv6 targets") {
    Socks5 a;
    a.feed("\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x16"s);
    CHECK(a.state() == Socks5::State::done);
    CHECK(a.host() == "127.0.0.1");
    CHECK(a.port() == 22);
    Socks5 b;
    b.feed("\x05\x01\x00\x05\x01\x00\x04"s + std::string(15, '\0') + "\x01\x01\xbb"s);
    CHECK(b.host() == "::1");
    CHECK(b.port() == 443);
}

TEST_CASE("SOCKS5 refuses what it does not support, with the right reply") {
    Socks5 v4;
    v4.feed("\x04\x01\x00\x50"s);
    CHECK(v4.state() == Socks5::State::failed);
    Socks5 auth;
    CHECK(auth.feed("\x05\x01\x02"s) == "\x05\xff"s);  // only username/password offered
    CHECK(auth.state() == Socks5::State::failed);
    Socks5 bind;
    auto r = bind.feed("\x05\x01\x00\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x16"s);
    CHECK(r.substr(2, 2) == "\x05\x07"s);
    Socks5 atyp;
    CHECK(atyp.feed("\x05\x01\x00\x05\x01\x00\x09"s).substr(2, 2) == "\x05\x08"s);
    Socks5 port0;
    port0.feed("\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x00"s);
    CHECK(port0.state() == Socks5::State::failed);
    Socks5 flood;
    flood.feed("\x05\xff"s + std::string(1000, '\x01'));
    CHECK(flood.state() == Socks5::State::failed);
    CHECK(flood.feed("more").empty());
}

TEST_CASE("SOCKS5 refuses a domain name with NUL or control bytes: general failure, then close") {
    // A name with a NUL would be cut short by a C string API further down (the SSH server's resolver),
    // and control bytes end up in log lines: such a name is never a host, so it is refused at once.
    for (std::string name : {"evil\0.example.org"s, "a\nb"s, "tab\there"s, "del\x7f"s, "\x01"s}) {
        Socks5 s;
        std::string req = "\x05\x01\x00\x05\x01\x00\x03"s + char(name.size()) + name + "\x00\x50"s;
        auto out = s.feed(req);
        CHECK(s.state() == Socks5::State::failed);
        REQUIRE(out.size() == 2 + 10);
        CHECK(out.substr(2, 2) == "\x05\x01"s);  // REP 1: general SOCKS server failure
        CHECK(s.error().find("control") != std::string::npos);
        CHECK(s.host().empty());
    }
    Socks5 ok;  // the same shape with printable bytes (also dashes, dots, digits, UTF-8) passes
    std::string name = "xn--bcher-kva.example-1.org\xc3\xa9";
    ok.feed("\x05\x01\x00\x05\x01\x00\x03"s + char(name.size()) + name + "\x00\x50"s);
    CHECK(ok.state() == Socks5::State::done);
    CHECK(ok.host() == name);
}

TEST_CASE("forward rules print the way they are typed") {
    CHECK(parse_rule(Kind::local, "8080:localhost:80").str() == "-L 8080:localhost:80");
    CHECK(parse_rule(Kind::remote, "*:6000:[::1]:22").str() == "-R *:6000:[::1]:22");
    CHECK(parse_rule(Kind::dynamic, "127.0.0.1:1080").str() == "-D 127.0.0.1:1080");
    CHECK(parse_rule(Kind::local, "8080:h:80").listen_host() == "127.0.0.1");
    CHECK(parse_rule(Kind::local, "*:8080:h:80").listen_host() == "0.0.0.0");
    CHECK_THROWS_WITH(parse_rule(Kind::local, "0:h:80"), Catch::Contains("listen port other than 0"));
}

TEST_CASE("settings merge: command line over file, duplicates refused") {
    ::setenv("HOME", "/tmp/tn-fwd-home", 1);
    auto p = std::filesystem::temp_directory_path() / "tn-forward-unit.toml";
    {
        std::ofstream f(p);
        f << "[server]\nhost = \"tunnel@relay.example.org\"\nport = 2222\n"
             "[liveness]\nkeepalive = 2\nprobe = \"1.1.1.1:53\"\n"
             "[[forward]]\nremote = \"0.0.0.0:6000:127.0.0.1:22\"\n";
    }
    CliValues cli;
    cli.keepalive = 7;
    cli.local = {"8080:localhost:80"};
    auto s = load_settings(cli, p.string());
    CHECK(s.client.host == "relay.example.org");
    CHECK(s.client.user == "tunnel");
    CHECK(s.client.port == std::uint16_t(2222));
    CHECK(s.keepalive_s == 7);
    CHECK(s.keepalive_count == 3);
    CHECK(s.probe->str() == "1.1.1.1:53");
    REQUIRE(s.rules.size() == 2);
    CHECK(s.rules[0].str() == "-L 8080:localhost:80");
    CHECK(s.rules[1].str() == "-R 0.0.0.0:6000:127.0.0.1:22");
    cli.remote = {"0.0.0.0:6000:127.0.0.1:22"};
    CHECK_THROWS_WITH(load_settings(cli, p.string()), Catch::Contains("forward given twice"));
    std::filesystem::remove(p);
}

TEST_CASE("settings: file problems are reported with locations") {
    auto p = std::filesystem::temp_directory_path() / "tn-forward-bad.toml";
    {
        std::ofstream f(p);
        f << "[server]\nhost = \"h\"\nport = 0\n[liveness]\nprobe = \"nope\"\n[[forward]]\nlocal = \"1:h\"\n";
    }
    try {
        load_settings({}, p.string());
        FAIL("no error");
    } catch (const Error& e) {
        std::string m = e.what();
        CHECK(e.code() == ExitCode::config);
        CHECK(m.find(":3:8: error: server.port: 0 is out of range 1..65535") != std::string::npos);
        CHECK(m.find(":5:9: error: liveness.probe: missing port") != std::string::npos);
        CHECK(m.find(":7:9: error: forward[0].local: expected [bind:]port:host:hostport") != std::string::npos);
    }
    std::filesystem::remove(p);
}

TEST_CASE("backoff doubles to the cap, jitters down, and resets") {
    Backoff b(std::chrono::milliseconds(500), std::chrono::milliseconds(4000));
    CHECK(b.next(1.0).count() == 500);
    CHECK(b.next(1.0).count() == 1000);
    CHECK(b.next(1.0).count() == 2000);
    CHECK(b.next(1.0).count() == 4000);
    CHECK(b.next(1.0).count() == 4000);
    CHECK(b.next(0.5).count() == 2000);
    CHECK(b.next(0.1).count() == 2000);  // jitter is clamped to [0.5, 1]
    b.reset();
    CHECK(b.next(1.0).count() == 500);
}

TEST_CASE("a probe target with a numeric address needs no lookup; a name resolves in the background") {
    using Clock = ProbeTarget::Clock;
    auto now = Clock::now();
    ProbeTarget numeric("127.0.0.1", 22, now);
    CHECK_FALSE(numeric.resolving());
    REQUIRE(numeric.address(now));
    CHECK(numeric.address(now)->ss.ss_family == AF_INET);
    ProbeTarget v6("::1", 22, now);
    REQUIRE(v6.address(now));
    CHECK(v6.address(now)->ss.ss_family == AF_INET6);
    // A name is looked up by a helper thread: the constructor returns before the answer, and the
    // address appears on a later call (this loop stands in for the tunnel's turns).
    ProbeTarget name("localhost", 22, now);
    CHECK(name.resolving());
    std::optional<SockAddr> got;
    for (int i = 0; i < 3000 && !got; ++i) {
        got = name.address(Clock::now());
        if (!got) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(got);
    ProbeTarget bad("no-such-host.invalid", 22, now);  // RFC 6761: never resolves
    for (int i = 0; i < 3000 && bad.resolving(); ++i) {
        bad.address(Clock::now());
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK_FALSE(bad.address(Clock::now()));
}
