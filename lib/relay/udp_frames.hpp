// UDP datagrams on a link (doc/PROTOCOL.relay.md §11): inside the link's record stream every datagram
// is a u16 big-endian length and that many payload bytes, so datagrams stay datagrams whatever the
// record boundaries are. Pure encode/decode over caller buffers: no I/O (fuzzed: fuzz_udp_frames).
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "relay/wire.hpp"

namespace tn::relay {

// The largest payload of one IPv4 UDP datagram (65535 - 8 UDP - 20 IP); a frame announcing more is
// refused before anything is buffered for it. An empty datagram is a valid one (length 0).
inline constexpr std::size_t kUdpMaxPayload = 65507;
inline constexpr std::size_t kUdpFrameHeader = 2;
inline constexpr std::size_t kUdpFrameMax = kUdpFrameHeader + kUdpMaxPayload;  // fits one record

// Appends the frame of `datagram` to `out`; throws WireError when it is over kUdpMaxPayload.
void append_udp_frame(Bytes& out, std::span<const std::uint8_t> datagram);

// Reassembles datagrams from the stream however it was cut. Holds at most one partial frame
// (< kUdpFrameMax bytes), whatever it is fed.
class UdpFrameDecoder {
public:
    using OnDatagram = std::function<void(std::span<const std::uint8_t>)>;
    // Calls `on` for every whole datagram in `bytes` (and in what earlier calls left); keeps the
    // rest. Throws WireError on a length over kUdpMaxPayload: the stream is unusable after that.
    void feed(std::span<const std::uint8_t> bytes, const OnDatagram& on);
    // Bytes of an unfinished frame held: 0 when the stream ended on a frame boundary.
    std::size_t pending() const { return have_; }

private:
    std::size_t need() const;  // bytes the partial frame still lacks
    std::uint8_t part_[kUdpFrameMax];
    std::size_t have_ = 0;
};

}  // namespace tn::relay
