// The datagram framing of UDP links (relay/udp_frames): datagrams come out whole and in order however
// the stream is cut, an empty datagram is one, and an oversized length is refused before buffering.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "relay/udp_frames.hpp"

using namespace tn::relay;

namespace {
Bytes dgram(std::size_t n, std::uint8_t seed) {
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(seed + i * 13);
    return b;
}
std::vector<Bytes> sample() { return {dgram(5, 1), dgram(0, 2), dgram(1, 3), dgram(1400, 4), dgram(kUdpMaxPayload, 5), dgram(2, 6)}; }
Bytes stream_of(const std::vector<Bytes>& ds) {
    Bytes s;
    for (const auto& d : ds) append_udp_frame(s, d);
    return s;
}
}  // namespace

TEST_CASE("a frame is the u16 big-endian length and the payload") {
    Bytes s;
    append_udp_frame(s, Bytes{0xaa, 0xbb, 0xcc});
    CHECK(s == Bytes{0x00, 0x03, 0xaa, 0xbb, 0xcc});
    append_udp_frame(s, Bytes{});
    CHECK(s.size() == 7);
    Bytes big;
    append_udp_frame(big, dgram(kUdpMaxPayload, 0));
    CHECK(big[0] == 0xff);
    CHECK(big[1] == 0xe3);  // 65507
}

TEST_CASE("a datagram over 65507 bytes cannot be framed") {
    Bytes s;
    CHECK_THROWS_AS(append_udp_frame(s, dgram(kUdpMaxPayload + 1, 0)), WireError);
    CHECK(s.empty());
}

TEST_CASE("datagrams come out whole and in order, the stream cut at every byte") {
    auto ds = sample();
    auto s = stream_of(ds);
    // Every single cut point, and the stream fed in pieces of each of several sizes.
    for (std::size_t cut = 0; cut <= s.size(); cut += (cut < 4200 || s.size() - cut < 4200) ? 1 : 997) {
        UdpFrameDecoder d;
        std::vector<Bytes> got;
        auto on = [&](std::span<const std::uint8_t> b) { got.emplace_back(b.begin(), b.end()); };
        d.feed(std::span(s).first(cut), on);
        d.feed(std::span(s).subspan(cut), on);
        REQUIRE(got == ds);
        CHECK(d.pending() == 0);
    }
    for (std::size_t piece : {1u, 2u, 3u, 7u, 1000u, 65536u}) {
        UdpFrameDecoder d;
        std::vector<Bytes> got;
        for (std::size_t at = 0; at < s.size(); at += piece)
            d.feed(std::span(s).subspan(at, std::min(piece, s.size() - at)),
                   [&](std::span<const std::uint8_t> b) { got.emplace_back(b.begin(), b.end()); });
        CHECK(got == ds);
    }
}

TEST_CASE("an oversized length is refused, whole or cut inside its header") {
    Bytes bad{0xff, 0xe4, 1, 2, 3};  // 65508
    UdpFrameDecoder whole;
    CHECK_THROWS_AS(whole.feed(bad, [](std::span<const std::uint8_t>) { FAIL("no datagram"); }), WireError);
    UdpFrameDecoder cut;
    int n = 0;
    auto s = stream_of({dgram(3, 9)});
    s.push_back(0xff);
    cut.feed(s, [&](std::span<const std::uint8_t>) { ++n; });  // one good datagram, then half a header
    CHECK(n == 1);
    CHECK(cut.pending() == 1);
    CHECK_THROWS_AS(cut.feed(Bytes{0xff}, [](std::span<const std::uint8_t>) { FAIL("no datagram"); }), WireError);
}

TEST_CASE("a stream that ends inside a frame leaves it pending, never delivered") {
    auto s = stream_of({dgram(100, 1)});
    UdpFrameDecoder d;
    d.feed(std::span(s).first(s.size() - 1), [](std::span<const std::uint8_t>) { FAIL("a cut datagram"); });
    CHECK(d.pending() == s.size() - 1);
}
