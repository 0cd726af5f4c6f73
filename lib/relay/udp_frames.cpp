// The datagram framing of UDP links: 2-byte length + payload, with the length capped before use.
#include "relay/udp_frames.hpp"

#include <algorithm>
#include <cstring>
#include <string>

namespace tn::relay {

namespace {
std::size_t frame_length(const std::uint8_t* p) {
    std::size_t n = (std::size_t{p[0]} << 8) | p[1];
    if (n > kUdpMaxPayload)
        throw WireError("UDP frame of " + std::to_string(n) + " bytes (the most a datagram carries is " +
                        std::to_string(kUdpMaxPayload) + ")");
    return n;
}
}  // namespace

void append_udp_frame(Bytes& out, std::span<const std::uint8_t> datagram) {
    if (datagram.size() > kUdpMaxPayload)
        throw WireError("datagram of " + std::to_string(datagram.size()) + " bytes is over " + std::to_string(kUdpMaxPayload));
    out.push_back(static_cast<std::uint8_t>(datagram.size() >> 8));
    out.push_back(static_cast<std::uint8_t>(datagram.size() & 0xff));
    out.insert(out.end(), datagram.begin(), datagram.end());
}

std::size_t UdpFrameDecoder::need() const {
    if (have_ < kUdpFrameHeader) return kUdpFrameHeader - have_;
    return kUdpFrameHeader + frame_length(part_) - have_;
}

void UdpFrameDecoder::feed(std::span<const std::uint8_t> bytes, const OnDatagram& on) {
    // First complete the frame an earlier call left unfinished (its header may be cut too).
    while (have_ > 0 && !bytes.empty()) {
        auto n = std::min(need(), bytes.size());
        std::memcpy(part_ + have_, bytes.data(), n);
        have_ += n;
        bytes = bytes.subspan(n);
        if (have_ >= kUdpFrameHeader && need() == 0) {
            have_ = 0;
            on(std::span<const std::uint8_t>(part_ + kUdpFrameHeader, frame_length(part_)));
        }
    }
    // Whole frames straight from the input, without a copy.
    while (bytes.size() >= kUdpFrameHeader) {
        auto len = frame_length(bytes.data());
        if (bytes.size() < kUdpFrameHeader + len) break;
        on(bytes.subspan(kUdpFrameHeader, len));
        bytes = bytes.subspan(kUdpFrameHeader + len);
    }
    // A cut frame (its length checked already when its header is whole) waits for the rest.
    if (!bytes.empty()) {
        std::memcpy(part_, bytes.data(), bytes.size());
        have_ = bytes.size();
    }
}

}  // namespace tn::relay
