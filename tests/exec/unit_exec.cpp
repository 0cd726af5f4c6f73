// Unit tests for tn-exec's pure parts: remote path and host list parsing, env words, command
// composition, exit-code mapping, output framing and the progress line.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "base/error.hpp"
#include "fs_cmd.hpp"
#include "options.hpp"
#include "output.hpp"
#include "password.hpp"
#include "progress.hpp"
#include "ssh/exec.hpp"
#include "ssh/jump.hpp"

using namespace tn;
using namespace tn::exec;

TEST_CASE("split_remote follows scp's rules") {
    auto r = split_remote("host:/a/b");
    REQUIRE(r);
    CHECK(r->host == "host");
    CHECK(r->path == "/a/b");
    r = split_remote("me@host:");
    REQUIRE(r);
    CHECK(r->host == "me@host");
    CHECK(r->path.empty());
    r = split_remote("[::1]:dir with space/é");
    REQUIRE(r);
    CHECK(r->host == "[::1]");
    CHECK(r->path == "dir with space/é");
    CHECK_FALSE(split_remote("plainfile"));
    CHECK_FALSE(split_remote("./a:b"));   // a slash before the colon: local
    CHECK_FALSE(split_remote("/x/y:z"));
    CHECK_FALSE(split_remote(":nohost"));
    CHECK_FALSE(split_remote("user@:x"));
}

TEST_CASE("split_remote takes the user@host:port:PATH that messages print") {
    auto r = split_remote("me@host:2222:/a/b");
    REQUIRE(r);
    CHECK(r->host == "me@host:2222");
    CHECK(r->path == "/a/b");
    r = split_remote("me@[::1]:22:rel");
    REQUIRE(r);
    CHECK(r->host == "me@[::1]:22");
    CHECK(r->path == "rel");
    r = split_remote("host:22:");
    REQUIRE(r);
    CHECK(r->host == "host:22");
    CHECK(r->path.empty());
    // Not a port: stays part of the path.
    r = split_remote("host:99999:x");
    REQUIRE(r);
    CHECK(r->host == "host");
    CHECK(r->path == "99999:x");
    r = split_remote("host:2222");
    REQUIRE(r);
    CHECK(r->path == "2222");
    auto t = make_target(split_remote("me@host:2222:/a")->host, {});
    CHECK(t.client.user == "me");
    CHECK(t.client.host == "host");
    CHECK(t.client.port == 2222);
}

TEST_CASE("parse_env wants NAME=VALUE with a shell name") {
    CHECK(parse_env("A=b c") == std::pair<std::string, std::string>{"A", "b c"});
    CHECK(parse_env("_X1=") == std::pair<std::string, std::string>{"_X1", ""});
    CHECK(parse_env("K=a=b").second == "a=b");
    CHECK_THROWS_AS(parse_env("novalue"), ParseError);
    CHECK_THROWS_AS(parse_env("=x"), ParseError);
    CHECK_THROWS_AS(parse_env("1A=x"), ParseError);
    CHECK_THROWS_AS(parse_env("A-B=x"), ParseError);
}

TEST_CASE("expand_hosts reads lists, files and stdin") {
    std::istringstream in("# fleet\nh1\n\n  me@h2:2222  \n");
    auto hosts = expand_hosts({"a,b,,c", "@-"}, in);
    std::vector<std::string> specs;
    for (const auto& h : hosts) specs.push_back(h.spec);
    CHECK(specs == std::vector<std::string>{"a", "b", "c", "h1", "me@h2:2222"});
    std::istringstream empty;
    CHECK_THROWS_AS(expand_hosts({"@-", "@-"}, empty), ParseError);
    CHECK_THROWS(expand_hosts({"@/nonexistent/hosts"}, empty));
    CHECK_THROWS_AS(expand_hosts({"bad host"}, empty), ParseError);
}

TEST_CASE("a host list line may name the host's password file; anything else on it is an error") {
    std::istringstream in("web1 --password-file /etc/pw1\n  db@web2:2200   --password-file rel/pw  \nweb3\n");
    auto hosts = expand_hosts({"@-"}, in);
    REQUIRE(hosts.size() == 3);
    CHECK(hosts[0] == HostEntry{"web1", "/etc/pw1"});
    CHECK(hosts[1].spec == "db@web2:2200");
    CHECK(hosts[1].password_file == (std::filesystem::current_path() / "rel/pw").string());
    CHECK(hosts[2] == HostEntry{"web3", ""});
    for (auto* bad : {"web1 --password-file\n", "web1 --password pw\n", "web1 --password-file a b\n", "web1:99999\n"}) {
        std::istringstream b(std::string("ok\n") + bad);
        try {
            expand_hosts({"@-"}, b);
            FAIL("accepted " << bad);
        } catch (const ParseError& e) {
            CHECK_THAT(e.what(), Catch::StartsWith("stdin:2: "));
        }
    }
}

TEST_CASE("with_remote_deadline runs the command under timeout(1) when the remote has it") {
    auto w = ssh::with_remote_deadline("sleep 9 # it's", std::chrono::milliseconds(1500));
    CHECK(w == "if command -v timeout >/dev/null 2>&1; then exec timeout -k 2 1.500 \"${SHELL:-/bin/sh}\" -c "
               "'sleep 9 # it'\\''s'; else sleep 9 # it's\nfi");
    CHECK_THAT(ssh::with_remote_deadline("x", std::chrono::milliseconds(30)), Catch::Contains(" 0.030 "));
}

TEST_CASE("compose_command prefixes cwd and refused env names") {
    ssh::ExecRequest req;
    req.command = "ls -l";
    CHECK(ssh::compose_command(req, {}) == "ls -l");
    req.cwd = "my dir";
    req.env = {{"A", "x y"}, {"B", "it's"}};
    CHECK(ssh::compose_command(req, {"B"}) == "export B='it'\\''s'; cd 'my dir' || exit 1; ls -l");
}

TEST_CASE("exit codes: status, 128+signal, 124, 255") {
    ssh::ExecResult r;
    CHECK(ssh::exit_code_for(r) == 255);
    r.exit_status = 3;
    CHECK(ssh::exit_code_for(r) == 3);
    r.exit_status = 256 + 4;
    CHECK(ssh::exit_code_for(r) == 4);
    r.signal = "TERM";
    CHECK(ssh::exit_code_for(r) == 143);
    r.signal = "KILL";
    CHECK(ssh::exit_code_for(r) == 137);
    r.signal = "WEIRD";
    CHECK(ssh::exit_code_for(r) == 255);
    r.timed_out = true;
    CHECK(ssh::exit_code_for(r) == 124);
    CHECK(ssh::signal_number("INT") == 2);
    CHECK(ssh::signal_number("") == 0);
}

namespace {
std::string read_all(int fd) {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    return out;
}
}  // namespace

TEST_CASE("prefixed and JSON output frame whole lines per host and stream") {
    int o[2], e[2];
    REQUIRE(::pipe(o) == 0);
    REQUIRE(::pipe(e) == 0);
    {
        Output out(OutputMode::prefixed, o[1], e[1]);
        HostOutput h(out, "web1");
        h.out("one\ntw");
        h.err("oops\n");
        h.out("o\nthree");  // no final newline: flushed at the end
    }
    ::close(o[1]);
    ::close(e[1]);
    CHECK(read_all(o[0]) == "web1: one\nweb1: two\nweb1: three\n");
    CHECK(read_all(e[0]) == "web1: oops\n");
    ::close(o[0]);
    ::close(e[0]);

    REQUIRE(::pipe(o) == 0);
    {
        Output out(OutputMode::json, o[1], 2);
        {
            HostOutput h(out, "db\"1");
            h.err("bad\tthing\n");
        }
        out.summary("db\"1", 3, 12, "");
        out.summary("x", 255, 5, "cannot connect");
    }
    ::close(o[1]);
    CHECK(read_all(o[0]) ==
          "{\"host\":\"db\\\"1\",\"stream\":\"stderr\",\"line\":\"bad\\tthing\"}\n"
          "{\"host\":\"db\\\"1\",\"exit\":3,\"duration_ms\":12,\"error\":null}\n"
          "{\"host\":\"x\",\"exit\":255,\"duration_ms\":5,\"error\":\"cannot connect\"}\n");
    ::close(o[0]);
}

TEST_CASE("progress line shows bytes, percent, rate and ETA") {
    CHECK(format_bytes(512) == "512 B");
    CHECK(format_bytes(1536) == "1.5 KiB");
    auto line = format_progress("big.bin", 32ull << 20, 64ull << 20, 2.0, 100);
    CHECK(line == "big.bin  32.0 MiB / 64.0 MiB  50%  16.0 MiB/s  ETA 0:02");
    auto cut = format_progress(std::string(200, 'x'), 0, 10, 0, 80);
    CHECK(cut.size() <= 80);
    CHECK(cut.find("ETA --:--") != std::string::npos);
}

TEST_CASE("SSH_ASKPASS is used as OpenSSH decides, without a terminal prompt to fall back on") {
    using exec::env_askpass;
    CHECK_FALSE(env_askpass(nullptr, "force", true, false));
    CHECK_FALSE(env_askpass("", "force", true, false));
    CHECK(env_askpass("/bin/ap", "force", false, true) == std::optional<std::string>("/bin/ap"));
    CHECK_FALSE(env_askpass("/bin/ap", "never", true, false));
    CHECK(env_askpass("/bin/ap", "prefer", true, true));
    CHECK_FALSE(env_askpass("/bin/ap", "prefer", false, false));
    CHECK(env_askpass("/bin/ap", nullptr, true, false));
    CHECK_FALSE(env_askpass("/bin/ap", nullptr, true, true));   // a terminal: OpenSSH would prompt there
    CHECK_FALSE(env_askpass("/bin/ap", nullptr, false, false));  // no display
}

TEST_CASE("escape_name keeps a remote name on one unambiguous line") {
    CHECK(exec::escape_name("plain.txt") == "plain.txt");
    CHECK(exec::escape_name("a\nb") == "a\\nb");
    CHECK(exec::escape_name("a\\nb") == "a\\\\nb");  // a literal backslash-n is not a newline
    CHECK(exec::escape_name("caf\xc3\xa9") == "caf\xc3\xa9");
}

TEST_CASE("ProxyJump comes back from libssh's ProxyCommand form") {
    CHECK(ssh::proxy_jump_from_command("ssh -l alice -p 2200 -W '[%h]:%p' jump.example") == "alice@jump.example:2200");
    CHECK(ssh::proxy_jump_from_command("ssh -W '[%h]:%p' j") == "j");
    CHECK(ssh::proxy_jump_from_command("ssh -W '[%h]:%p' ::1") == "[::1]");
    CHECK_FALSE(ssh::proxy_jump_from_command("nc -X 5 -x proxy %h %p"));
    CHECK_FALSE(ssh::proxy_jump_from_command("ssh -o Foo=bar -W '[%h]:%p' j"));
    CHECK_THROWS_AS(ssh::proxy_jump_from_command("ssh -l a -J b@j2 -W '[%h]:%p' j1"), Error);
}
