// Unit tests of cookie replies (doc/PROTOCOL.tun.md §6): a client under a loaded server gets a
// cookie, retries with mac2 and gets in; mac2 is bound to the source address; a cookie verified
// sender is limited per address; forged or misdirected cookie replies are ignored.
#include <catch2/catch.hpp>

#include "tun_test_util.hpp"

using namespace tn::tun;
using namespace tn::tun::test;

namespace {
// Spends the server's global handshake tokens with initiations from `from` until it is under load.
void load_server(Net& n, const Endpoint& from) {
    Buf s, b;
    for (int i = 0; i < 40; ++i) {
        ClientCore c(ClientSettings{n.k2, n.server_key.pub, seconds(0)});
        auto ca = c.tick(n.now, n.wall + std::chrono::milliseconds(i), s.data());
        n.server.on_datagram(b.data(), b.load(ca.send), from, n.now, n.wall, n.scratch.data());
    }
}
Actions deliver(Net& n, Bytes d, const Endpoint& from) {
    static Buf b;
    return n.server.on_datagram(b.data(), b.load(d), from, n.now, n.wall, n.scratch.data());
}
}  // namespace

TEST_CASE("under load a client gets a cookie, retries with mac2 and connects") {
    Net n;
    auto flooder = endpoint("198.51.100.9", 5555);
    load_server(n, flooder);
    Buf s, cb, cs;
    auto ca = n.c1.tick(n.now, n.wall, s.data());
    REQUIRE(ca.send.size() == initiation_len);  // no cookie yet: no mac2
    Actions a = deliver(n, ca.send, n.e1);
    REQUIRE(a.send.size() == cookie_len);
    std::vector<std::uint8_t> reply(a.send.begin(), a.send.end());
    ClientActions r = n.c1.on_datagram(cb.data(), cb.load(Bytes(reply)), n.now, cs.data());
    CHECK(r.send.empty());
    CHECK(r.cookie);
    CHECK(n.c1.stats().cookies == 1);
    // The retry is due in a second, not after the full retry timeout.
    CHECK(n.c1.next_deadline(n.now) == n.now + seconds(1));
    n.now += seconds(1);
    n.wall += seconds(1);
    load_server(n, flooder);  // still under load
    ca = n.c1.tick(n.now, n.wall, s.data());
    REQUIRE(ca.send.size() == initiation_mac2_len);
    std::vector<std::uint8_t> init(ca.send.begin(), ca.send.end());
    // From another address the same mac2 is worthless: another cookie.
    a = deliver(n, Bytes(init), endpoint("192.0.2.99", 40001));
    CHECK(a.send.size() == cookie_len);
    // From its own address it is accepted.
    n.client_to_server(n.c1, n.e1, Bytes(init));
    CHECK(n.c1.connected());
}

TEST_CASE("under load lasts a second after the flood pauses, then initiations need no cookie") {
    Net n;
    load_server(n, endpoint("198.51.100.9", 5555));
    // Half a second of silence refills the whole burst; the server still asks for a cookie.
    n.now += std::chrono::milliseconds(500);
    n.wall += std::chrono::milliseconds(500);
    Buf s;
    auto ca = n.c1.tick(n.now, n.wall, s.data());
    REQUIRE(ca.send.size() == initiation_len);
    CHECK(deliver(n, ca.send, n.e1).send.size() == cookie_len);
    // A second later the load is over: a plain initiation gets its response.
    n.now += std::chrono::milliseconds(1001);
    n.wall += std::chrono::milliseconds(1001);
    ca = n.c2.tick(n.now, n.wall, s.data());
    REQUIRE(ca.send.size() == initiation_len);
    CHECK(deliver(n, ca.send, n.e2).send.size() == response_len);
}

TEST_CASE("cookie-verified initiations are limited per source address") {
    Net n;
    load_server(n, endpoint("198.51.100.9", 5555));
    Buf s, cb, cs;
    auto ca = n.c1.tick(n.now, n.wall, s.data());
    Actions a = deliver(n, ca.send, n.e1);
    std::vector<std::uint8_t> reply(a.send.begin(), a.send.end());
    n.c1.on_datagram(cb.data(), cb.load(Bytes(reply)), n.now, cs.data());
    int limited = 0, answered = 0;
    for (int i = 0; i < 10; ++i) {
        n.wall += std::chrono::milliseconds(1);  // fresh timestamps; the server's clock stands still
        // The client's clock runs ahead by a retry timeout each time so it sends a new initiation;
        // the server's barely moves, so its per-source bucket does not refill.
        ca = n.c1.tick(n.now + rekey_timeout * (i + 1), n.wall, s.data());
        a = deliver(n, ca.send, n.e1);
        if (a.rejected && std::string(a.rejected->reason) == "rate_limited") ++limited;
        if (a.send.size() == response_len) ++answered;
    }
    CHECK(answered == 5);  // the per-source burst
    CHECK(limited == 5);
}

TEST_CASE("cookie replies that are forged or meant for another initiation are ignored") {
    Net n;
    load_server(n, endpoint("198.51.100.9", 5555));
    Buf s, cb, cs;
    auto ca = n.c1.tick(n.now, n.wall, s.data());
    Actions a = deliver(n, ca.send, n.e1);
    std::vector<std::uint8_t> reply(a.send.begin(), a.send.end());
    auto bad = reply;
    bad[40] ^= 1;  // the encrypted cookie
    n.c1.on_datagram(cb.data(), cb.load(Bytes(bad)), n.now, cs.data());
    bad = reply;
    bad[4] ^= 1;  // another receiver index
    n.c1.on_datagram(cb.data(), cb.load(Bytes(bad)), n.now, cs.data());
    CHECK(n.c1.stats().cookies == 0);
    CHECK(n.c1.stats().dropped == 2);
    // A cookie for c2's initiation does not fit c1's (the AD is the mac1 c1 sent).
    auto c2 = n.c2.tick(n.now, n.wall, s.data());
    a = deliver(n, c2.send, n.e2);
    reply.assign(a.send.begin(), a.send.end());
    n.c1.on_datagram(cb.data(), cb.load(Bytes(reply)), n.now, cs.data());
    CHECK(n.c1.stats().cookies == 0);
    // Truncated or padded cookie replies do not even classify.
    CHECK_FALSE(classify(Bytes(reply.data(), cookie_len - 1)));
}
