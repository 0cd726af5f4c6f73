// Unit tests for the host-key policy and tn-keysetup's authorized_keys planning and option merging.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "authorized_keys.hpp"
#include "base/error.hpp"
#include "options.hpp"
#include "ssh/host_key.hpp"
#include "ssh/keys.hpp"

using namespace tn;
using tn::keysetup::plan_authorized_keys;
using tn::ssh::HostKeyAction;
using tn::ssh::KnownHostState;

TEST_CASE("host key policy") {
    using ssh::decide_host_key;
    CHECK(decide_host_key(KnownHostState::ok, false) == HostKeyAction::proceed);
    CHECK(decide_host_key(KnownHostState::unknown, false) == HostKeyAction::refuse_unknown);
    CHECK(decide_host_key(KnownHostState::unknown, true) == HostKeyAction::pin);
    CHECK(decide_host_key(KnownHostState::changed, true) == HostKeyAction::refuse_changed);
    CHECK(decide_host_key(KnownHostState::other_type, true) == HostKeyAction::refuse_changed);
    CHECK(decide_host_key(KnownHostState::error, true) == HostKeyAction::fail);
}

TEST_CASE("authorized_keys: append to empty, keep everything, fix the final newline") {
    const std::string key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKEY me@host";
    CHECK(plan_authorized_keys("", key).append == key + "\n");
    auto p = plan_authorized_keys("ssh-rsa AAAAB3other x", key);
    CHECK_FALSE(p.present);
    CHECK(p.append == "\n" + key + "\n");
    CHECK(plan_authorized_keys("# comment\nssh-rsa AAAAB3other x\n", key).append == key + "\n");
}

TEST_CASE("authorized_keys: a key is found whatever its options and comment") {
    const std::string key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKEY me@host";
    CHECK(plan_authorized_keys("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKEY other-comment\n", key).present);
    CHECK(plan_authorized_keys("from=\"10.0.0.1\",no-pty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKEY\n", key).present);
    CHECK(plan_authorized_keys("x\r\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKEY\r\n", key).present);
    // Commented out is not authorized; a longer blob that starts the same is another key.
    CHECK_FALSE(plan_authorized_keys("# ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKEY\n", key).present);
    CHECK_FALSE(plan_authorized_keys("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKEYX\n", key).present);
}

TEST_CASE("authorized_keys: a malformed key line is refused") {
    CHECK_THROWS_AS(plan_authorized_keys("", "justoneword"), ParseError);
}

TEST_CASE("key types") {
    CHECK(ssh::parse_key_type("ed25519") == ssh::KeyType::ed25519);
    CHECK(ssh::default_key_file(ssh::KeyType::rsa) == "id_rsa");
    CHECK_THROWS_WITH(ssh::parse_key_type("dsa"), "unknown key type \"dsa\" (use ed25519, ecdsa or rsa)");
    CHECK(ssh::key_identity("ssh-ed25519 AAAA comment words") == "ssh-ed25519 AAAA");
}

TEST_CASE("keysetup options: CLI wins over the file, the file fills the rest") {
    auto p = std::filesystem::temp_directory_path() / "tn-keysetup-test.toml";
    {
        std::ofstream f(p);
        f << "[keysetup]\nhost = \"alice@server:2222\"\nport = 2200\ntype = \"ecdsa\"\nconnect_timeout = 5\n";
    }
    keysetup::Options o;
    o.type = "rsa";
    keysetup::GivenOnCli given;
    given.type = true;
    keysetup::merge_config_file(p.string(), given, o);
    CHECK(o.target == "alice@server:2222");
    CHECK(o.port == std::uint16_t(2200));
    CHECK(o.type == "rsa");
    CHECK(o.connect_timeout == 5);
    ::setenv("HOME", "/tmp/tn-home-x", 1);
    auto plan = keysetup::make_plan(o);
    CHECK(plan.client.host == "server");
    CHECK(plan.client.user == "alice");
    CHECK(plan.client.port == std::uint16_t(2200));  // -p/port beats the target's :port, as in ssh
    CHECK(plan.key == "/tmp/tn-home-x/.ssh/id_rsa");
    std::filesystem::remove(p);
}

TEST_CASE("keysetup options: bad values are config errors with locations") {
    auto p = std::filesystem::temp_directory_path() / "tn-keysetup-bad.toml";
    {
        std::ofstream f(p);
        f << "[keysetup]\nhost = \"@x\"\ntype = \"dsa\"\nidentiy = \"k\"\n";
    }
    keysetup::Options o;
    try {
        keysetup::merge_config_file(p.string(), {}, o);
        FAIL("no error");
    } catch (const Error& e) {
        std::string m = e.what();
        CHECK(e.code() == ExitCode::config);
        CHECK(m.find(p.string() + ":2:8: error: keysetup.host: empty user before '@'") != std::string::npos);
        CHECK(m.find(":3:8: error: keysetup.type: unknown key type \"dsa\"") != std::string::npos);
        CHECK(m.find(":4:1: error: unknown key \"keysetup.identiy\" (did you mean \"identity\"?)") != std::string::npos);
    }
    std::filesystem::remove(p);
}
