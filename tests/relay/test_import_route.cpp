// tn-route import's pure conversion: frps .ini/.toml and vnet-v2's route config.ini in, tn-route TOML
// out; secrets handed back to the caller, never in the text; broken input is tn::Error(data).
#include <catch2/catch.hpp>

#include "base/error.hpp"
#include "import_frps.hpp"

using tn::route::import_route_text;
using tn::route::ImportOptions;

namespace {

bool has(const std::string& out, const std::string& line) { return out.find(line) != std::string::npos; }

std::pair<tn::ExitCode, std::string> fails(const std::string& text, const std::string& name, ImportOptions o = {}) {
    try {
        (void)import_route_text(text, name, o);
    } catch (const tn::Error& e) {
        return {e.code(), e.what()};
    }
    FAIL("import accepted:\n" << text);
    return {};
}

}  // namespace

TEST_CASE("frps ini: bind, vhost, dashboard, token, allow_ports; the password and token stay out of the text") {
    auto r = import_route_text(
        "[common]\nbind_addr = 127.0.0.1\nbind_port = 7000\nvhost_http_port = 8080  \ndashboard_port = 7500\n"
        "dashboard_user = admin\ndashboard_pwd = pa55word\ntoken = tok-0123456789\nallow_ports = 2000-3000, 3001\n"
        "kcp_bind_port = 7000\n",
        "frps.ini", {});
    CHECK(has(r.toml, "listen = '127.0.0.1:7000'"));
    CHECK(has(r.toml, "[http]\nlisten = '127.0.0.1:8080'"));
    CHECK(has(r.toml, "[dashboard]\nlisten = '0.0.0.0:7500'\nuser = 'admin'"));
    CHECK(has(r.toml, "ports = ['2000-3000', '3001']"));
    CHECK(has(r.toml, "not carried over: [common] kcp_bind_port = 7000"));
    CHECK_FALSE(has(r.toml, "pa55word"));
    CHECK_FALSE(has(r.toml, "tok-0123456789"));
    REQUIRE(r.token);
    REQUIRE(r.password);
    CHECK(r.password->expose() == "pa55word");
}

TEST_CASE("frps toml: webServer, auth.token, allowPorts tables, subDomainHost; --token-out and --domain") {
    ImportOptions o;
    o.token_file = "/etc/tn/default.token";
    o.token_out = true;
    o.password_file = "/etc/tn/dash.pw";
    o.password_out = true;
    o.domains = {"site1.example.com"};
    auto r = import_route_text(
        "bindPort = 7001\nvhostHTTPSPort = 443\nauth.token = \"t0123456789\"\nsubDomainHost = \"frp.example.org\"\n"
        "allowPorts = [{ start = 2000, end = 3000 }, { single = 3001 }]\n[webServer]\nport = 7500\npassword = \"pw\"\n",
        "frps.toml", o);
    CHECK(has(r.toml, "listen = '0.0.0.0:7001'"));
    CHECK(has(r.toml, "token_file = '/etc/tn/default.token'"));
    CHECK(has(r.toml, "ports = ['2000-3000', '3001']"));
    CHECK(has(r.toml, "domains = ['site1.example.com', '*.frp.example.org']"));
    CHECK(has(r.toml, "listen = '127.0.0.1:7500'"));  // frps's TOML default address
    CHECK(has(r.toml, "password_file = '/etc/tn/dash.pw'"));
    CHECK(has(r.toml, "[http]\nlisten_tls = '0.0.0.0:443'"));  // vhostHTTPSPort: HTTPS by SNI
    CHECK_FALSE(has(r.toml, "vhostHTTPSPort"));
    CHECK_FALSE(has(r.toml, "[http]\nlisten ="));  // no vhostHTTPPort: no HTTP listener
}

TEST_CASE("vnet-v2's route config.ini: listen, and the group to declare") {
    ImportOptions o;
    o.group = "default-ssh";
    auto r = import_route_text("[route] ; a comment\nip=0.0.0.0 ; ip\nport=7749 ; port\n", "config.ini", o);
    CHECK(has(r.toml, "listen = '0.0.0.0:7749'"));
    CHECK(has(r.toml, "name = 'default-ssh'"));
    CHECK_FALSE(has(r.toml, "ports ="));
    CHECK_FALSE(r.token);
}

TEST_CASE("route import: broken input is 65 with file and line") {
    auto [code, msg] = fails("[common]\nbind_port = 70000\n", "frps.ini");
    CHECK(code == tn::ExitCode::data);
    CHECK(has(msg, "frps.ini: error: [common] bind_port = 70000"));
    std::tie(code, msg) = fails("[common]\nallow_ports = 10-5\n", "frps.ini");
    CHECK(has(msg, "allow_ports"));
    std::tie(code, msg) = fails("[common]\nbind_port\n", "frps.ini");
    CHECK(has(msg, "frps.ini:2: error:"));
    std::tie(code, msg) = fails("bindPort = \"x\"\n", "frps.toml");
    CHECK(has(msg, "frps.toml:1:"));
    std::tie(code, msg) = fails("allowPorts = [{ start = 9 }]\nbindPort = 1\n", "frps.toml");
    CHECK(has(msg, "frps.toml:1:"));
    std::tie(code, msg) = fails("x = 1\n", "frps.toml");
    CHECK(has(msg, "not an frps config"));
    std::tie(code, msg) = fails("[other]\nx = 1\n", "frps.ini");
    CHECK(code == tn::ExitCode::data);
    ImportOptions o;
    o.domains = {"*"};
    std::tie(code, msg) = fails("[common]\nbind_port = 7000\n", "frps.ini", o);
    CHECK(has(msg, "domain '*'"));
}
