// The datagram framing of UDP links (lib/relay/udp_frames) as a hostile peer's records deliver it:
// the first byte picks how the rest is cut into feeds. Every datagram that comes out must be within
// the cap and inside the input; re-framing what came out must give back the bytes consumed.
#include <cstdint>
#include <vector>

#include "relay/udp_frames.hpp"

using namespace tn::relay;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t piece = 1 + data[0];
    std::span<const std::uint8_t> in(data + 1, size - 1);
    UdpFrameDecoder d;
    Bytes again;
    try {
        for (std::size_t at = 0; at < in.size(); at += piece) {
            d.feed(in.subspan(at, std::min(piece, in.size() - at)), [&](std::span<const std::uint8_t> g) {
                if (g.size() > kUdpMaxPayload) __builtin_trap();
                append_udp_frame(again, g);
            });
        }
        // Everything fed is either re-framed datagrams or the one pending partial frame.
        if (again.size() + d.pending() != in.size()) __builtin_trap();
        if (!std::equal(again.begin(), again.end(), in.begin())) __builtin_trap();
    } catch (const WireError&) {
    }
    return 0;
}
