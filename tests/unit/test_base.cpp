// Unit tests for lib/base: log formatting, strings, address parsing, runtime dir, locks, signals.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>

#include "base/error.hpp"
#include "base/log.hpp"
#include "base/net_addr.hpp"
#include "base/runtime_dir.hpp"
#include "base/secret.hpp"
#include "base/signals.hpp"
#include "base/strings.hpp"

using namespace tn;

namespace {
std::chrono::system_clock::time_point at_ms(long long ms) {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}
template <class F> std::string parse_error_of(F&& f) {
    try {
        f();
    } catch (const ParseError& e) {
        return e.what();
    }
    return "<no error>";
}
EnvLookup fake_env(std::map<std::string, std::string> m) {
    return [m](const std::string& k) -> std::optional<std::string> {
        auto it = m.find(k);
        if (it == m.end()) return std::nullopt;
        return it->second;
    };
}
}  // namespace

TEST_CASE("log lines are ISO-8601 UTC with a fixed-width level") {
    // 2026-11-23T10:00:00.123Z
    auto t = at_ms(1795428000123LL);
    CHECK(log::iso8601_utc(t) == "2026-11-23T10:00:00.123Z");
    CHECK(log::format_line(log::Format::text, log::Level::info, "tn-forward", "forward up", t) ==
          "2026-11-23T10:00:00.123Z INFO  tn-forward: forward up\n");
    CHECK(log::format_line(log::Format::text, log::Level::error, "x", "a\nb", t) ==
          "2026-11-23T10:00:00.123Z ERROR x: a\\nb\n");
}

TEST_CASE("journal lines carry a syslog priority and no timestamp of their own") {
    auto t = at_ms(1795428000123LL);
    using log::Level, log::Format, log::Sink;
    CHECK(log::format_line(Format::text, Level::info, "tn-route", "up", t, Sink::journal) == "<6>INFO  tn-route: up\n");
    CHECK(log::format_line(Format::text, Level::warn, "x", "w", t, Sink::journal) == "<4>WARN  x: w\n");
    CHECK(log::format_line(Format::text, Level::error, "x", "a\nb", t, Sink::journal) == "<3>ERROR x: a\\nb\n");
    CHECK(log::format_line(Format::text, Level::debug, "x", "d", t, Sink::journal) == "<7>DEBUG x: d\n");
    CHECK(log::format_line(Format::text, Level::trace, "x", "t", t, Sink::journal) == "<7>TRACE x: t\n");
    // JSON stays JSON for whoever parses it.
    CHECK(log::format_line(Format::json, Level::info, "x", "m", at_ms(0), Sink::journal) ==
          log::format_line(Format::json, Level::info, "x", "m", at_ms(0)));
}

TEST_CASE("json log lines escape the message") {
    auto line = log::format_line(log::Format::json, log::Level::warn, "tn-x", "say \"hi\"\n", at_ms(0));
    CHECK(line == "{\"ts\":\"1970-01-01T00:00:00.000Z\",\"level\":\"warn\",\"tool\":\"tn-x\",\"msg\":\"say \\\"hi\\\"\\n\"}\n");
}

TEST_CASE("a context logger puts the same fields on every line, as a text prefix or as JSON keys") {
    auto t = at_ms(0);
    log::Fields f = log::with_field(log::with_field({}, "peer", "1.2.3.4:5"), "vnet", "a");
    CHECK(log::format_line(log::Format::text, log::Level::info, "tn-route", "up", t, log::Sink::plain, f) ==
          "1970-01-01T00:00:00.000Z INFO  tn-route: [peer=1.2.3.4:5 vnet=a] up\n");
    CHECK(log::format_line(log::Format::json, log::Level::info, "tn-route", "up", t, log::Sink::plain, f) ==
          "{\"ts\":\"1970-01-01T00:00:00.000Z\",\"level\":\"info\",\"tool\":\"tn-route\",\"peer\":\"1.2.3.4:5\","
          "\"vnet\":\"a\",\"msg\":\"up\"}\n");
    // A key set again is replaced, not repeated; keys can never be the line's own or leave [a-z0-9_].
    f = log::with_field(f, "vnet", "b");
    CHECK(f == log::Fields{{"peer", "1.2.3.4:5"}, {"vnet", "b"}});
    CHECK(log::with_field({}, "msg", "x") == log::Fields{{"msg_", "x"}});
    CHECK(log::with_field({}, "a\"b\n", "x") == log::Fields{{"a_b_", "x"}});
    // A hostile value stays one token of the prefix, escaped: no forged fields, lines or escapes.
    auto evil = log::with_field({}, "group", "g] x=1\n\x1b[2J");
    CHECK(log::format_line(log::Format::text, log::Level::warn, "x", "m", t, log::Sink::journal, evil) ==
          "<4>WARN  x: [group=\"g] x=1\\n\\u001b[2J\"] m\n");
    CHECK(log::format_line(log::Format::text, log::Level::warn, "x", "m", t, log::Sink::journal,
                           log::with_field({}, "name", "a\x1b" "b")) == "<4>WARN  x: [name=a\\x1bb] m\n");
    auto json = log::format_line(log::Format::json, log::Level::warn, "x", "m", t, log::Sink::plain, evil);
    CHECK(json == "{\"ts\":\"1970-01-01T00:00:00.000Z\",\"level\":\"warn\",\"tool\":\"x\",\"group\":\"g] x=1\\n\\u001b[2J\","
                  "\"msg\":\"m\"}\n");

    // Through a Logger: the child follows the parent's level and format, set before or after.
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    log::Logger lg("tn-vnet", log::Level::info, log::Format::text, fds[1], log::Sink::journal);
    auto session = lg.with("route", "h:1").with("vnet", "7");
    auto serve = session.with("serve", "ssh");
    serve.info("up ", 3);
    session.debug("hidden");
    lg.set_level(log::Level::debug);
    session.debug("shown");
    lg.set_format(log::Format::json);
    lg.info("plain");
    ::close(fds[1]);
    std::string got(4096, '\0');
    auto n = ::read(fds[0], got.data(), got.size());
    ::close(fds[0]);
    REQUIRE(n > 0);
    got.resize(static_cast<std::size_t>(n));
    CHECK(got.find("<6>INFO  tn-vnet: [route=h:1 vnet=7 serve=ssh] up 3\n") == 0);
    CHECK(got.find("hidden") == std::string::npos);
    CHECK(got.find("<7>DEBUG tn-vnet: [route=h:1 vnet=7] shown\n") != std::string::npos);
    CHECK(got.find("\"tool\":\"tn-vnet\",\"msg\":\"plain\"}\n") != std::string::npos);
}

TEST_CASE("a log line written under a prompt erases the prompt's line and draws the prompt again") {
    CHECK(log::around_prompt("2026 INFO  x: up\n", ">: ") == "\r\x1b[K2026 INFO  x: up\n>: ");
    CHECK(log::around_prompt("line\n", "") == "line\n");
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    log::Logger lg("x", log::Level::info, log::Format::text, fds[1], log::Sink::journal);
    std::string prompt;
    lg.keep_prompt(&prompt);
    lg.info("hidden");  // no prompt on screen (a command runs): the line as it is
    prompt = ">: ";
    lg.info("shown");
    lg.keep_prompt(nullptr);
    lg.info("detached");
    ::close(fds[1]);
    std::string got;
    char buf[256];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    CHECK(got == "<6>INFO  x: hidden\n\r\x1b[K<6>INFO  x: shown\n>: <6>INFO  x: detached\n");
}

TEST_CASE("verbosity moves the level and clamps") {
    CHECK(log::level_from_verbosity(0, 0) == log::Level::info);
    CHECK(log::level_from_verbosity(1, 0) == log::Level::debug);
    CHECK(log::level_from_verbosity(5, 0) == log::Level::trace);
    CHECK(log::level_from_verbosity(0, 1) == log::Level::warn);
    CHECK(log::level_from_verbosity(0, 9) == log::Level::error);
    CHECK_FALSE(log::parse_format("xml"));
}

TEST_CASE("shell_quote keeps every word verbatim for sh") {
    CHECK(shell_quote("plain-word_1.txt") == "plain-word_1.txt");
    CHECK(shell_quote("") == "''");
    CHECK(shell_quote("a b") == "'a b'");
    CHECK(shell_quote("$HOME") == "'$HOME'");
    CHECK(shell_quote("it's") == "'it'\\''s'");
    CHECK(shell_join({"printf", "%s\\n", "a b"}) == "printf '%s\\n' 'a b'");
}

TEST_CASE("closest_match suggests near typos only") {
    std::vector<std::string> keys{"listen", "token", "fingerprint"};
    CHECK(closest_match("lisen", keys) == std::optional<std::string>("listen"));
    CHECK(closest_match("fingerprnt", keys) == std::optional<std::string>("fingerprint"));
    CHECK_FALSE(closest_match("zzzzzzzz", keys));
}

TEST_CASE("parse_int rejects junk") {
    CHECK(parse_int("42", 0, 100) == 42);
    CHECK_FALSE(parse_int("42x", 0, 100));
    CHECK_FALSE(parse_int("", 0, 100));
    CHECK_FALSE(parse_int("101", 0, 100));
    CHECK_FALSE(parse_int("-1", 0, 100));
    CHECK_FALSE(parse_int("99999999999999999999999", 0, 100));
}

TEST_CASE("host:port and [v6]:port") {
    CHECK(parse_host_port("example.org:22") == HostPort{"example.org", 22});
    CHECK(parse_host_port("[::1]:8080") == HostPort{"::1", 8080});
    CHECK(HostPort{"::1", 8080}.str() == "[::1]:8080");
    CHECK(parse_error_of([] { parse_host_port("example.org"); }) ==
          "missing port (expected host:port) in \"example.org\"");
    CHECK(parse_error_of([] { parse_host_port("h:70000"); }) == "invalid port \"70000\" (must be 1-65535) in \"h:70000\"");
    CHECK(parse_error_of([] { parse_host_port("h:0"); }) == "invalid port \"0\" (must be 1-65535) in \"h:0\"");
    CHECK(parse_error_of([] { parse_host_port("[::1:22"); }) == "missing ']' in \"[::1:22\"");
    CHECK(parse_error_of([] { parse_host_port("::1:22"); }) == "too many ':' (use [v6]:port for IPv6) in \"::1:22\"");
    CHECK(parse_error_of([] { parse_host_port(":22"); }) == "missing host in \":22\"");
    CHECK(parse_error_of([] { parse_host_port("[host]:22"); }) == "bracketed address \"[host]\" is not IPv6 in \"[host]:22\"");
    CHECK(parse_error_of([] { parse_host_port("a b:22"); }) == "invalid character in host \"a b\" in \"a b:22\"");
}

TEST_CASE("[user@]host[:port]") {
    CHECK(parse_ssh_target("host") == SshTarget{"", "host", std::nullopt});
    CHECK(parse_ssh_target("bob@host:2222") == SshTarget{"bob", "host", 2222});
    CHECK(parse_ssh_target("bob@[fe80::1]:22") == SshTarget{"bob", "fe80::1", 22});
    CHECK(parse_ssh_target("::1") == SshTarget{"", "::1", std::nullopt});
    CHECK(parse_ssh_target("a@b@host") == SshTarget{"a@b", "host", std::nullopt});
    CHECK(parse_error_of([] { parse_ssh_target("@host"); }) == "empty user before '@' in \"@host\"");
    CHECK(parse_error_of([] { parse_ssh_target("bob@"); }) == "missing host in \"bob@\"");
    CHECK(parse_error_of([] { parse_ssh_target("host:abc"); }) == "invalid port \"abc\" (must be 1-65535) in \"host:abc\"");
}

TEST_CASE("forward specs in OpenSSH syntax") {
    CHECK(parse_forward_spec("8080:localhost:80") == ForwardSpec{"", 8080, "localhost", 80});
    CHECK(parse_forward_spec("0.0.0.0:6000:127.0.0.1:22") == ForwardSpec{"0.0.0.0", 6000, "127.0.0.1", 22});
    CHECK(parse_forward_spec("*:6000:h:22") == ForwardSpec{"*", 6000, "h", 22});
    CHECK(parse_forward_spec("[::1]:6000:[2001:db8::2]:22") == ForwardSpec{"::1", 6000, "2001:db8::2", 22});
    CHECK(parse_forward_spec("0:h:22").port == 0);
    CHECK(parse_error_of([] { parse_forward_spec("8080:80"); }) == "expected [bind:]port:host:hostport in \"8080:80\"");
    CHECK(parse_error_of([] { parse_forward_spec("8080:h:0"); }) == "invalid port \"0\" (must be 1-65535) in \"8080:h:0\"");
    CHECK(parse_error_of([] { parse_forward_spec(":8080:h:22"); }) ==
          "empty bind address (omit it or use '*') in \":8080:h:22\"");
    CHECK(parse_error_of([] { parse_forward_spec("x:h:22"); }) == "invalid port \"x\" (must be 0-65535) in \"x:h:22\"");
    CHECK(parse_error_of([] { parse_forward_spec("1:[h]x:22"); }) == "unexpected text after ']' in \"1:[h]x:22\"");
}

TEST_CASE("dynamic specs") {
    CHECK(parse_dynamic_spec("1080") == DynamicSpec{"", 1080});
    CHECK(parse_dynamic_spec("127.0.0.1:1080") == DynamicSpec{"127.0.0.1", 1080});
    CHECK(parse_error_of([] { parse_dynamic_spec("a:b:c"); }) == "expected [bind:]port in \"a:b:c\"");
}

TEST_CASE("state dir precedence") {
    CHECK(state_dir_path(fake_env({{"TN_STATE_DIR", "/s"}, {"XDG_RUNTIME_DIR", "/x"}, {"HOME", "/h"}})) == "/s");
    CHECK(persistent_dir_path(fake_env({{"TN_STATE_DIR", "/s"}})) == "/s");
    CHECK(home_dir(fake_env({{"HOME", "/h"}})) == "/h");
}

TEST_CASE("one state dir per user whatever the environment") {
    auto dirs = [](StateDirInputs in) { return resolve_state_dirs(in); };
    StateDirInputs login{std::nullopt, false, "/home/u", true, "/home/u"};
    CHECK(dirs(login).runtime == "/home/u/.local/state/tn");
    CHECK(dirs(login).persistent == "/home/u/.local/state/tn");
    // cron: no XDG_RUNTIME_DIR (never read), same HOME; sudo -u leaving the caller's HOME: the passwd home.
    StateDirInputs sudo{std::nullopt, false, "/home/caller", false, "/home/u"};
    CHECK(dirs(sudo).runtime == "/home/u/.local/state/tn");
    StateDirInputs no_home{std::nullopt, false, std::nullopt, false, "/home/u"};
    CHECK(dirs(no_home).runtime == "/home/u/.local/state/tn");
    StateDirInputs root{std::nullopt, true, "/root", true, "/root"};
    CHECK(dirs(root).runtime == "/run/tn");
    CHECK(dirs(root).persistent == "/var/lib/tn");
    StateDirInputs pinned{"/s", true, "/root", true, "/root"};
    CHECK(dirs(pinned).runtime == "/s");
    CHECK_THROWS_AS(dirs(StateDirInputs{}), tn::Error);
    // XDG_RUNTIME_DIR does not move it.
    CHECK(state_dir_path(fake_env({{"XDG_RUNTIME_DIR", "/x"}, {"HOME", "/h"}})) ==
          state_dir_path(fake_env({{"HOME", "/h"}})));
}

TEST_CASE("FileLock is exclusive and released with its owner") {
    auto dir = std::filesystem::temp_directory_path() / ("tn-lock-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto path = dir / "x.lock";
    {
        auto a = FileLock::try_acquire(path);
        REQUIRE(a);
        CHECK_FALSE(FileLock::try_acquire(path));  // a second open file description is refused
    }
    CHECK(FileLock::try_acquire(path));
    auto st = ensure_state_dir(fake_env({{"TN_STATE_DIR", (dir / "state").string()}}));
    struct stat sb {};
    REQUIRE(::stat(st.c_str(), &sb) == 0);
    CHECK((sb.st_mode & 0777) == 0700);
    std::filesystem::remove_all(dir);
}

TEST_CASE("SignalFd delivers a raised signal") {
    SignalFd sfd({SIGUSR1});
    CHECK_FALSE(sfd.take());
    ::raise(SIGUSR1);
    CHECK(sfd.take() == SIGUSR1);
}

TEST_CASE("Secret prints MASKED") {
    Secret s("hunter2");
    std::ostringstream os;
    os << s;
    CHECK(os.str() == "MASKED");
    CHECK(s.expose() == "hunter2");
}

TEST_CASE("escape_controls: C0, DEL, C1 and broken UTF-8 become visible escapes") {
    CHECK(escape_controls("plain text, ünïcødé ✓") == "plain text, ünïcødé ✓");
    CHECK(escape_controls("a\nb\rc\td") == "a\\nb\\rc\\td");
    CHECK(escape_controls("\x1b[2J\x07\x7f") == "\\x1b[2J\\x07\\x7f");
    CHECK(escape_controls("x\xc2\x9b" "31m") == "x\\u009b31m");  // C1 CSI, UTF-8 encoded
    CHECK(escape_controls("x\x9b" "31m") == "x\\x9b31m");        // a lone C1 byte (CSI to 8-bit terminals)
    CHECK(escape_controls("\xc0\xaf\xed\xa0\x80\xe2\x82") == "\\xc0\\xaf\\xed\\xa0\\x80\\xe2\\x82");  // overlong, surrogate, cut
    CHECK(escape_controls(std::string_view("a\0b", 3)) == "a\\x00b");
    CHECK(escape_controls("row\tx\n", "\t\n") == "row\tx\n");
    CHECK(escape_controls("\xc2\xa0") == "\xc2\xa0");  // U+00A0 is not a control
}

TEST_CASE("json_quote_text is valid JSON for any bytes") {
    CHECK(json_quote_text("say \"hi\"\\\n") == "\"say \\\"hi\\\"\\\\\\n\"");
    CHECK(json_quote_text("\x1b\x7f\xc2\x85") == "\"\\u001b\\u007f\\u0085\"");
    CHECK(json_quote_text("ok \xff end") == "\"ok \\ufffd end\"");
    CHECK(json_quote_text("é✓") == "\"é✓\"");
}

TEST_CASE("a hostile name cannot forge a log line or drive the terminal") {
    auto t = at_ms(0);
    std::string evil = "x\n1970-01-01T00:00:00.000Z INFO  tn-route: fake\x1b]0;title\x07\xc2\x9b" "2J\xff";
    auto text = log::format_line(log::Format::text, log::Level::info, "tn-vnet", "peer " + evil, t);
    CHECK(text == "1970-01-01T00:00:00.000Z INFO  tn-vnet: peer x\\n1970-01-01T00:00:00.000Z INFO  tn-route: fake"
                  "\\x1b]0;title\\x07\\u009b2J\\xff\n");
    auto json = log::format_line(log::Format::json, log::Level::info, "tn-vnet", evil, t);
    CHECK(json.find('\n') == json.size() - 1);
    for (unsigned char c : json.substr(0, json.size() - 1)) CHECK((c >= 0x20 && c != 0x7f));
    CHECK(json.find("\\u001b]0;title\\u0007\\u009b2J\\ufffd") != std::string::npos);
}

TEST_CASE("secret_file_warning names a token or key file readable by group or others") {
    auto dir = std::filesystem::temp_directory_path() / ("tn-secret-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto f = dir / "token";
    { std::FILE* fp = std::fopen(f.c_str(), "w"); REQUIRE(fp); std::fclose(fp); }
    ::chmod(f.c_str(), 0600);
    CHECK_FALSE(secret_file_warning(f));
    ::chmod(f.c_str(), 0640);
    auto w = secret_file_warning(f);
    REQUIRE(w);
    CHECK(w->find("readable by its group (mode 0640)") != std::string::npos);
    CHECK(w->find("chmod 600 " + f.string()) != std::string::npos);
    ::chmod(f.c_str(), 0604);
    REQUIRE(secret_file_warning(f));
    CHECK(secret_file_warning(f)->find("readable by others") != std::string::npos);
    CHECK_FALSE(secret_file_warning(dir / "missing"));
    std::filesystem::remove_all(dir);
}
