// tn-vnet import's pure conversion: vnet-v2 config.ini and frpc .ini/.toml in, tn-vnet TOML out, with
// a comment for what is not carried over and tn::Error(data) with the file (and line) for broken input.
#include <catch2/catch.hpp>

#include "base/error.hpp"
#include "import_vnet.hpp"

using tn::vnet::import_vnet_text;
using tn::vnet::ImportOptions;

namespace {

std::string convert(const std::string& text, const std::string& name = "config.ini", ImportOptions o = {}) {
    return import_vnet_text(text, name, o).toml;
}

bool has(const std::string& out, const std::string& line) { return out.find(line) != std::string::npos; }

// The exit code and message of a failed import.
std::pair<tn::ExitCode, std::string> fails(const std::string& text, const std::string& name = "config.ini") {
    try {
        (void)convert(text, name);
    } catch (const tn::Error& e) {
        return {e.code(), e.what()};
    }
    FAIL("import accepted:\n" << text);
    return {};
}

const char* kHomeA =
    "[route]\nip=10.12.140.180\nport=7749\n\n[vnet]\nname=remote-ssh ; a comment\ngroup=default-ssh\nterminal=false\n"
    "startserve=true\nstartuse=false\nallow_unserve=true\nunserve_remote=false\nunserve_num=3\n\n"
    "[serve.ssh]\nserveid=700\ntype=tcp\nip=127.0.0.1\nport=22\nname=ssh\ninfo=home-ssh\nactive=true\n";

}  // namespace

TEST_CASE("vnet-v2: every key keeps its meaning, inline comments go") {
    auto out = convert(kHomeA);
    for (const char* line : {"address = '10.12.140.180:7749'", "name = 'remote-ssh'\n", "group = 'default-ssh'",
                             "terminal = false", "start_serve = true", "start_use = false", "allow_unserve = true",
                             "unserve_remote = false", "unserve_num = 3", "[[serve]]", "id = 700", "port = 22",
                             "info = 'home-ssh'", "active = true"})
        CHECK(has(out, line));
    CHECK_FALSE(has(out, "a comment"));
    CHECK_FALSE(has(out, "not carried over"));
    // Neither token nor fingerprint: commented, with how to set them.
    CHECK(has(out, "# token_file = "));
    CHECK(has(out, "tn-route fingerprint"));
}

TEST_CASE("vnet-v2: serveid 000 is dynamic, a use without serveid is left off, unknown keys are listed") {
    auto out = convert(
        "[route]\nip=::1\nport=7749\n[vnet]\nname=a\nfancy=1\n[serve.web]\nserveid=000\nport=8080\n"
        "[use.none]\nport=9000\n[use.ok]\nserveid=042\n[other]\nx=y\n");
    CHECK(has(out, "address = '[::1]:7749'"));
    CHECK(has(out, "name = 'web'"));  // the section's suffix when there is no name key
    CHECK(has(out, "id: none, the route assigns one"));
    CHECK_FALSE(has(out, "id = 0"));
    CHECK(has(out, "not carried over: [use.none]"));
    CHECK(has(out, "[[use]]\nname = 'ok'\nid = 42\n"));
    CHECK(has(out, "not carried over: [vnet] fancy = 1"));
    CHECK(has(out, "not carried over: [other]"));
}

TEST_CASE("vnet-v2: token file and fingerprint from the options") {
    ImportOptions o;
    o.token_file = "/etc/tn/g.token";
    o.fingerprint = "sha256:" + std::string(64, 'a');
    auto r = import_vnet_text(kHomeA, "config.ini", o);
    CHECK(has(r.toml, "token_file = '/etc/tn/g.token'"));
    CHECK(has(r.toml, "fingerprint = 'sha256:aaaa"));
    CHECK_FALSE(r.token);
}

TEST_CASE("vnet-v2: bad values and broken INI are input errors (65) naming the file") {
    auto [code, msg] = fails("[route]\nip=1.2.3.4\nport=77777\n[vnet]\nname=a\n");
    CHECK(code == tn::ExitCode::data);
    CHECK(has(msg, "config.ini: error: [route] port = 77777"));
    std::tie(code, msg) = fails("[route]\nip=1.2.3.4\nport=1\n[vnet]\nterminal=maybe\n");
    CHECK(has(msg, "terminal = maybe: not a boolean"));
    std::tie(code, msg) = fails("[route]\nip=1.2.3.4\nport=1\n[vnet]\n[serve.x]\nserveid=1000\nport=1\n");
    CHECK(has(msg, "serveid = 1000"));
    std::tie(code, msg) = fails("[route]\nip=1.2.3.4\nport=1\n[vnet]\n[serve.x]\nip=1.2.3.4\n");
    CHECK(has(msg, "[serve.x] has no port"));
    std::tie(code, msg) = fails("[route]\nip=1.2.3.4\nport\n");
    CHECK(code == tn::ExitCode::data);
    CHECK(has(msg, "config.ini:3: error:"));
    std::tie(code, msg) = fails("[route]\nip=1\n[route]\nport=2\n");
    CHECK(has(msg, "config.ini:3: error: duplicate section"));
    std::tie(code, msg) = fails("[route]\nip=1.2.3.4\nport=7749\n");
    CHECK(has(msg, "tn-route import"));  // a route's config.ini, not a vnet's
    std::tie(code, msg) = fails("[route]\nip=1.2.3.4\x1b[31m\nport=1\n");  // a terminal escape
    CHECK(has(msg, "config.ini:2: error: not UTF-8 text (or a control character)"));
    std::tie(code, msg) = fails("[route]\nip=1.2.3.4\nport=1\n[vnet]\nname=\xff\xfe\n");
    CHECK(has(msg, "config.ini:5: error: not UTF-8"));
    std::tie(code, msg) = fails("[nothing]\n", "empty.ini");
    CHECK(code == tn::ExitCode::data);
}

TEST_CASE("frpc ini: server, token, tcp and http proxies; secrets never printed") {
    auto r = import_vnet_text(
        "[common]\nserver_addr = 203.0.113.5\nserver_port = 7000\ntoken = s3cret-token\nhttp_pwd = hunter2\n\n"
        "[ssh]\ntype = tcp\nlocal_ip = 127.0.0.1\nlocal_port = 22\nremote_port = 6000\nuse_encryption = true\n\n"
        "[web]\ntype = http\nlocal_port = 80\ncustom_domains = a.example.com, b.example.com\n\n"
        "[dns]\ntype = udp\nlocal_port = 53\nremote_port = 6053\n\n"
        "[tls]\ntype = https\nlocal_port = 443\ncustom_domains = s.example.com\n\n"
        "[tls2]\ntype = https\nlocal_port = 8443\ncustom_domains = a.example.com\n",
        "frpc.ini", {});
    REQUIRE(r.token);
    CHECK(r.token->expose() == "s3cret-token");
    CHECK_FALSE(has(r.toml, "s3cret"));
    CHECK_FALSE(has(r.toml, "hunter2"));
    CHECK(has(r.toml, "address = '203.0.113.5:7000'"));
    CHECK(has(r.toml, "remote_port = 6000"));
    CHECK(has(r.toml, "custom_domains = ['a.example.com', 'b.example.com']"));
    CHECK(has(r.toml, "name = 'dns'\ntype = 'udp'"));  // frp's udp proxy: a udp serve on a UDP remote_port
    CHECK(has(r.toml, "remote_port = 6053"));
    // An https proxy is a serve reached by SNI; one whose domain an http proxy has already is listed.
    CHECK(has(r.toml, "name = 'tls'\ntype = 'tcp'  # frp's https proxy: the route picks it by SNI"));
    CHECK(has(r.toml, "custom_domains = ['s.example.com']"));
    CHECK(has(r.toml, "not carried over: proxy 'tls2' (type = https) (custom domain 'a.example.com' is proxy 'web' already"));
    CHECK(has(r.toml, "not carried over: [ssh] use_encryption = true"));
    CHECK(has(r.toml, "not carried over: [common] http_pwd = (hidden)"));
    CHECK(has(r.toml, "not carried over: the token"));
}

TEST_CASE("frpc toml: auth.token to the result only; proxies; broken TOML names the line") {
    auto r = import_vnet_text(
        "serverAddr = \"203.0.113.5\"\nserverPort = 7001\nauth.token = \"tok-0123456789\"\nlog.level = \"info\"\n"
        "[[proxies]]\nname = \"ssh\"\ntype = \"tcp\"\nlocalPort = 22\nremotePort = 6000\n"
        "[[proxies]]\nname = \"web\"\ntype = \"http\"\nlocalIP = \"10.0.0.2\"\nlocalPort = 80\ncustomDomains = [\"w.example.com\"]\n",
        "frpc.toml", {});
    REQUIRE(r.token);
    CHECK_FALSE(has(r.toml, "tok-0123456789"));
    CHECK(has(r.toml, "address = '203.0.113.5:7001'"));
    CHECK(has(r.toml, "ip = '10.0.0.2'"));
    CHECK(has(r.toml, "custom_domains = ['w.example.com']"));
    CHECK(has(r.toml, "not carried over: log"));
    auto [code, msg] = fails("serverAddr = \"x\"\n[[proxies]]\nname = \"a\"\nlocalPort = \"22\"\n", "frpc.toml");
    CHECK(code == tn::ExitCode::data);
    CHECK(has(msg, "frpc.toml:4:"));
    std::tie(code, msg) = fails("serverAddr = \n", "frpc.toml");
    CHECK(code == tn::ExitCode::data);
    CHECK(has(msg, "frpc.toml:1:"));
    std::tie(code, msg) = fails("serverAddr = \"x\"\n[[proxies]]\nname = \"a\"\ntype = \"tcp\"\n", "frpc.toml");
    CHECK(has(msg, "proxy 'a' has no local port"));
}

TEST_CASE("--token-out: the token file is named in [route], and the token is handed back") {
    ImportOptions o;
    o.token_file = "/tmp/x.token";
    o.token_out = true;
    auto r = import_vnet_text("[common]\nserver_addr = h\ntoken = abcdefgh1\n[s]\nlocal_port = 22\n", "frpc.ini", o);
    CHECK(has(r.toml, "token_file = '/tmp/x.token'  # written by --token-out, mode 0600"));
    CHECK_FALSE(has(r.toml, "not carried over: the token"));
    REQUIRE(r.token);
}
