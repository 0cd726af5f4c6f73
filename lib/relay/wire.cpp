// Hello and frame header of the relay protocol.
#include "relay/wire.hpp"

#include <algorithm>
#include <cstring>

namespace tn::relay {

namespace {
constexpr std::uint8_t kMagic[4] = {'T', 'N', 'R', 'L'};

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
std::uint32_t be32(const std::uint8_t* p) {
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}
void put16(std::uint8_t* p, std::uint16_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v);
}
void put32(std::uint8_t* p, std::uint32_t v) {
    put16(p, static_cast<std::uint16_t>(v >> 16));
    put16(p + 2, static_cast<std::uint16_t>(v));
}
}  // namespace

std::string_view type_name(MsgType t) {
    switch (t) {
        case MsgType::challenge: return "CHALLENGE";
        case MsgType::auth: return "AUTH";
        case MsgType::welcome: return "WELCOME";
        case MsgType::error: return "ERROR";
        case MsgType::serve: return "SERVE";
        case MsgType::serve_result: return "SERVE_RESULT";
        case MsgType::serve_close: return "SERVE_CLOSE";
        case MsgType::serve_up: return "SERVE_UP";
        case MsgType::serve_down: return "SERVE_DOWN";
        case MsgType::vnets_req: return "VNETS_REQ";
        case MsgType::vnets: return "VNETS";
        case MsgType::ping: return "PING";
        case MsgType::pong: return "PONG";
        case MsgType::heartbeat: return "HEARTBEAT";
        case MsgType::unserve_req: return "UNSERVE_REQ";
        case MsgType::unserve_ask: return "UNSERVE_ASK";
        case MsgType::unserve_reply: return "UNSERVE_REPLY";
        case MsgType::unserve_result: return "UNSERVE_RESULT";
        case MsgType::link_request: return "LINK_REQUEST";
        case MsgType::link_fail: return "LINK_FAIL";
        case MsgType::link_open: return "LINK_OPEN";
        case MsgType::link_accept: return "LINK_ACCEPT";
        case MsgType::link_ok: return "LINK_OK";
        case MsgType::link_park: return "LINK_PARK";
        case MsgType::link_standby: return "LINK_STANDBY";
        case MsgType::link_opened: return "LINK_OPENED";
    }
    return "UNKNOWN";
}

std::array<std::uint8_t, kHelloSize> encode_hello(std::uint16_t version) {
    std::array<std::uint8_t, kHelloSize> b{};
    std::memcpy(b.data(), kMagic, 4);
    put16(b.data() + 4, version);
    return b;
}

std::uint16_t decode_hello(std::span<const std::uint8_t> b) {
    if (b.size() != kHelloSize || std::memcmp(b.data(), kMagic, 4) != 0)
        throw WireError("not a tn relay peer (bad hello magic)");
    if (be16(b.data() + 6) != 0) throw WireError("hello has unknown flags set");
    return be16(b.data() + 4);
}

std::array<std::uint8_t, kHeaderSize> encode_header(MsgType t, std::uint32_t length) {
    std::array<std::uint8_t, kHeaderSize> b{};
    put16(b.data(), static_cast<std::uint16_t>(t));
    put32(b.data() + 4, length);
    return b;
}

Header decode_header(std::span<const std::uint8_t> b, std::uint32_t cap) {
    if (b.size() != kHeaderSize) throw WireError("short frame header");
    std::uint16_t flags = be16(b.data() + 2);
    if (flags != 0) throw WireError("frame has unknown flags 0x" + std::to_string(flags));
    Header h{static_cast<MsgType>(be16(b.data())), be32(b.data() + 4)};
    if (h.length > cap)
        throw WireError("oversized frame: " + std::to_string(h.length) + " bytes (cap " + std::to_string(cap) + ")");
    return h;
}

Bytes encode_frame(const Frame& f) {
    if (f.payload.size() > kMaxPayload) throw WireError("frame payload over the cap");
    auto h = encode_header(f.type, static_cast<std::uint32_t>(f.payload.size()));
    Bytes out(kHeaderSize + f.payload.size());
    std::memcpy(out.data(), h.data(), kHeaderSize);
    if (!f.payload.empty()) std::memcpy(out.data() + kHeaderSize, f.payload.data(), f.payload.size());
    return out;
}

bool FrameDecoder::next(Frame& out) {
    if (buf_.size() < kHeaderSize) return false;
    Header h = decode_header(std::span(buf_.data(), kHeaderSize));
    if (buf_.size() < kHeaderSize + h.length) return false;
    out.type = h.type;
    out.payload.assign(buf_.begin() + kHeaderSize, buf_.begin() + kHeaderSize + h.length);
    buf_.erase(buf_.begin(), buf_.begin() + kHeaderSize + h.length);
    return true;
}

}  // namespace tn::relay
