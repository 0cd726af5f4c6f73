// tn-tun server add-peer/remove-peer: the text edits of the server's config (comments and layout kept).
#include <catch2/catch.hpp>

#include "base/error.hpp"
#include "config/document.hpp"
#include "enrol.hpp"

using namespace tn::tuntool;

namespace {

const std::string base = "# the office VPN\n[server]\nprivate_key_file = \"server.key\"  # 0600\n"
                         "routes = [\n  \"10.1.0.0/16\",\n]\n\n"
                         "[[peer]]   # the first one\nname = \"alice\"\npublic_key = \"A\"\n"
                         "routes = [\n  \"10.50.0.0/24\",\n]\n\n"
                         "[[ peer ]]\nname = \"bob\"\npublic_key = \"B\"\n";

std::vector<std::string> names(const std::string& text) {
    auto doc = tn::config::Document::parse(text, "t");
    std::vector<std::string> out;
    for (auto& p : doc.root().tables("peer")) out.push_back(*p.string("name"));
    return out;
}

}  // namespace

TEST_CASE("add-peer appends a [[peer]] table and keeps everything else byte for byte") {
    auto t = append_peer(base, "carol", "C", std::nullopt);
    CHECK(t.rfind(base, 0) == 0);
    CHECK(names(t) == std::vector<std::string>{"alice", "bob", "carol"});
    auto u = append_peer("[server]\nlisten = \"x\"", "dave", "D", std::string("dave.psk"));  // no final newline
    CHECK(u == "[server]\nlisten = \"x\"\n\n[[peer]]\nname = \"dave\"\npublic_key = \"D\"\npreshared_key_file = \"dave.psk\"\n");
}

TEST_CASE("remove-peer takes out exactly the named table, whatever its header's spacing or comment") {
    auto no_alice = remove_peer_text(base, "alice");
    CHECK(names(no_alice) == std::vector<std::string>{"bob"});
    CHECK(no_alice.find("10.50.0.0/24") == std::string::npos);  // its multi-line array went with it
    CHECK(no_alice.find("10.1.0.0/16") != std::string::npos);   // the server's did not
    CHECK(no_alice.find("# the office VPN") == 0);
    auto no_bob = remove_peer_text(base, "bob");
    CHECK(names(no_bob) == std::vector<std::string>{"alice"});
    CHECK(names(remove_peer_text(no_bob, "alice")).empty());
    CHECK(remove_peer_text(append_peer(base, "carol", "C", std::nullopt), "carol") == base);  // a round trip
    CHECK_THROWS_AS(remove_peer_text(base, "carol"), tn::Error);
    CHECK_THROWS_WITH(remove_peer_text(base, "carol"), Catch::Contains("no [[peer]] named 'carol'"));
    CHECK_THROWS_AS(remove_peer_text(base, "alic"), tn::Error);  // names match whole
}
