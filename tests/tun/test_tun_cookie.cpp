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
    CHECK(n.c1.next_deadline() == n.now + seconds(1));
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

TEST_CASE("a verified initiation refused only by the DH ceiling gets a cookie, so it retries in a second") {
    auto settings = Net::settings(fixed_keypair(0x40), fixed_keypair(0x01), fixed_keypair(0x21));
    settings.handshakes_per_second = settings.max_handshakes_per_second = 0.001;  // no refill within the test
    settings.handshake_burst = 2;
    settings.max_handshake_burst = 1;
    Net n(settings);
    n.connect(n.c2, n.e2);  // takes the only ceiling token
    Buf s, cb, cs;
    auto ca = n.c1.tick(n.now, n.wall, s.data());
    Actions a = deliver(n, ca.send, n.e1);  // the last global token, then the ceiling refuses
    REQUIRE(a.rejected);
    // Now under load: no mac2 yet, so a cookie; the retry carries mac2.
    n.wall += std::chrono::milliseconds(1);
    ca = n.c1.tick(n.now + rekey_timeout, n.wall, s.data());
    a = deliver(n, ca.send, n.e1);
    REQUIRE(a.send.size() == cookie_len);
    std::vector<std::uint8_t> reply(a.send.begin(), a.send.end());
    REQUIRE(n.c1.on_datagram(cb.data(), cb.load(Bytes(reply)), n.now + rekey_timeout, cs.data()).cookie);
    n.wall += std::chrono::milliseconds(1);
    ca = n.c1.tick(n.now + rekey_timeout + seconds(1), n.wall, s.data());
    REQUIRE(ca.send.size() == initiation_mac2_len);
    a = deliver(n, ca.send, n.e1);
    REQUIRE(a.rejected);
    CHECK(std::string(a.rejected->reason) == "rate_limited");
    // Refused by the ceiling, not by its own bucket: a cookie reply, which the client takes as
    // "retry in one second" instead of waiting out REKEY_TIMEOUT.
    REQUIRE(a.send.size() == cookie_len);
    reply.assign(a.send.begin(), a.send.end());
    auto t = n.now + rekey_timeout + seconds(1);
    CHECK(n.c1.on_datagram(cb.data(), cb.load(Bytes(reply)), t, cs.data()).cookie);
    CHECK(n.c1.next_deadline() == t + seconds(1));
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

namespace {
Endpoint endpoint6(const char* ip, std::uint16_t port) {
    Endpoint e;
    auto* a = reinterpret_cast<sockaddr_in6*>(&e.sa);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    inet_pton(AF_INET6, ip, &a->sin6_addr);
    e.len = sizeof(sockaddr_in6);
    return e;
}

// A sender that receives at its address: gets a cookie for `from`, then sends `count` initiations
// carrying mac2. Returns how many of them reached Diffie-Hellman work (neither a cookie nor the rate
// limit stopped them: the same initiation again is refused as a replay only after the DH).
int dh_runs(Net& n, const std::vector<std::uint8_t>& init, const Endpoint& from, int count) {
    Actions a = deliver(n, Bytes(init), from);
    REQUIRE(a.send.size() == cookie_len);
    std::vector<std::uint8_t> reply(a.send.begin(), a.send.end());
    Mac sent_mac1;
    std::memcpy(sent_mac1.data(), init.data() + init_off::mac1, sent_mac1.size());
    auto cookie = open_cookie_reply(n.server_key.pub, Bytes(reply), sent_mac1);
    REQUIRE(cookie);
    auto with_mac2 = init;
    Mac m2 = make_mac2(*cookie, Bytes(init));
    with_mac2.insert(with_mac2.end(), m2.begin(), m2.end());
    int ran = 0;
    for (int i = 0; i < count; ++i) {
        a = deliver(n, Bytes(with_mac2), from);
        std::string reason = a.rejected ? a.rejected->reason : "";
        if (reason != "rate_limited" && reason != "cookie_sent") ++ran;
    }
    return ran;
}

std::vector<std::uint8_t> one_initiation(Net& n) {
    Buf s;
    auto ca = n.c1.tick(n.now, n.wall, s.data());
    REQUIRE(ca.send.size() == initiation_len);
    return {ca.send.begin(), ca.send.end()};
}

std::string ipv4_of(int i) {
    return "10." + std::to_string(i >> 16 & 255) + "." + std::to_string(i >> 8 & 255) + "." + std::to_string(i & 255);
}
}  // namespace

TEST_CASE("cookie-verified IPv6 senders share one bucket per /64") {
    Net n;
    load_server(n, endpoint("198.51.100.9", 5555));
    auto init = one_initiation(n);
    // 1,000 addresses in one /64, each proving it receives there, five tries each: one host's worth.
    int ran = 0;
    for (int i = 0; i < 1000; ++i) {
        char ip[64];
        std::snprintf(ip, sizeof ip, "2001:db8:1:2::%x", i + 1);
        ran += dh_runs(n, init, endpoint6(ip, 40000), 5);
    }
    CHECK(ran == 5);  // the burst of one source, not 5,000
    // Another /64 is another source.
    CHECK(dh_runs(n, init, endpoint6("2001:db8:1:3::1", 40000), 1) == 1);
}

TEST_CASE("a full source table refuses new senders and never resets the limited ones") {
    ServerSettings s = Net::settings(fixed_keypair(0x40), fixed_keypair(0x01), fixed_keypair(0x21));
    s.max_handshakes_per_second = 1e9;  // this case is about the table, not the ceiling
    s.max_handshake_burst = 1e9;
    Net n;
    n.server = ServerCore(s);
    load_server(n, endpoint("198.51.100.9", 5555));
    auto init = one_initiation(n);
    auto first = endpoint("192.0.2.200", 1);
    CHECK(dh_runs(n, init, first, 10) == 5);  // its burst, then limited
    for (std::size_t i = 1; i < ServerCore::max_sources; ++i)
        REQUIRE(dh_runs(n, init, endpoint(ipv4_of(static_cast<int>(i)).c_str(), 2), 1) == 1);
    // The table is full of sources still limited: a new one is refused...
    CHECK(dh_runs(n, init, endpoint("203.0.113.1", 3), 1) == 0);
    // ...and the first one did not get a fresh burst out of it.
    CHECK(dh_runs(n, init, first, 1) == 0);
    // Once their buckets have refilled, entries are forgotten and new sources get in.
    n.now += seconds(2);
    load_server(n, endpoint("198.51.100.9", 5555));  // still under load
    CHECK(dh_runs(n, init, endpoint("203.0.113.1", 3), 1) == 1);
}

TEST_CASE("Diffie-Hellman work has a global ceiling on the cookie path too") {
    Net n;
    load_server(n, endpoint("198.51.100.9", 5555));
    auto init = one_initiation(n);
    // 1,000 distinct IPv4 senders at one instant, each within its own per-source limit.
    int ran = 0;
    for (int i = 1; i <= 1000; ++i) ran += dh_runs(n, init, endpoint(ipv4_of(i).c_str(), 4), 1);
    CHECK(ran > 0);
    CHECK(ran <= static_cast<int>(ServerSettings{}.max_handshake_burst));
}
