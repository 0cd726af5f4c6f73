// The tn relay wire format (doc/PROTOCOL.relay.md): hello, frame header, bounded reader/writer and the
// message catalogue. Encode/decode only: no state, no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/byte_cursor.hpp"
#include "base/error.hpp"

namespace tn::relay {

// 6: the route tells a connected vnet its new heartbeat interval (HEARTBEAT, in the write of a PONG),
// and answers a hello with the version it will speak on that connection: a route speaks 5 and 6.
// 5: proofs bound to the control connection's TLS session (its exporter value).
// 4: plain links (tls = false) carry records too, in clear, so they are reused like sealed ones.
// 3: the using vnet draws the link key and may send its first records right after LINK_OPEN, and a
// standby link is bound without an answer from the serving vnet (a round trip less each side).
// 2: links are plain TCP, proven by HMAC over the route's challenge and, with tls = true, sealed
// end to end by the record layer (seal.hpp); 1 ran TLS on every link.
inline constexpr std::uint16_t kVersion = 6;
// The oldest version a route still speaks: version-5 vnets keep working after their route is updated
// (they never get HEARTBEAT, so they keep their WELCOME's interval). Links are the same in both.
inline constexpr std::uint16_t kOldestVersion = 5;
inline constexpr bool speaks_heartbeat(std::uint16_t version) { return version >= 6; }
inline constexpr std::size_t kHelloSize = 8;
inline constexpr std::size_t kHeaderSize = 8;
// One cap for every frame: large enough for a 64 KiB DATA chunk, small enough that a peer cannot make
// us allocate more than that per connection.
inline constexpr std::uint32_t kMaxPayload = 65536;
inline constexpr std::size_t kNameMax = 64;
inline constexpr std::size_t kTextMax = 1024;

using Bytes = std::vector<std::uint8_t>;
using Nonce = std::array<std::uint8_t, 32>;
using Mac = std::array<std::uint8_t, 32>;
using Ticket = std::array<std::uint8_t, 16>;

// A peer's malformed input: closes that connection (never ours to abort on).
class WireError : public Error {
public:
    explicit WireError(const std::string& m) : Error(ExitCode::data, m) {}
};

enum class MsgType : std::uint16_t {
    challenge = 0x0001, auth = 0x0002, welcome = 0x0003, error = 0x0004,
    serve = 0x0010, serve_result = 0x0011, serve_close = 0x0012, serve_up = 0x0013, serve_down = 0x0014,
    vnets_req = 0x0020, vnets = 0x0021,
    ping = 0x0030, pong = 0x0031, heartbeat = 0x0032,
    unserve_req = 0x0040, unserve_ask = 0x0041, unserve_reply = 0x0042, unserve_result = 0x0043,
    link_request = 0x0050, link_fail = 0x0051,
    link_open = 0x0060, link_accept = 0x0061, link_ok = 0x0062,  // 0x0063/0x0064: v1's DATA/EOF, retired
    link_park = 0x0065, link_standby = 0x0066, link_opened = 0x0068,  // 0x0067: v2's LINK_DONE, retired
};
std::string_view type_name(MsgType t);

enum class ErrorCode : std::uint16_t {
    version = 1, auth = 2, limit = 3, conflict = 4, not_found = 5, protocol = 6, refused = 7, internal = 8,
};

// ---- hello ----
std::array<std::uint8_t, kHelloSize> encode_hello(std::uint16_t version = kVersion);
// Returns the peer's version; throws WireError on a wrong magic or flags.
std::uint16_t decode_hello(std::span<const std::uint8_t> b);

// ---- frame header ----
struct Header {
    MsgType type{};
    std::uint32_t length = 0;
};
std::array<std::uint8_t, kHeaderSize> encode_header(MsgType t, std::uint32_t length);
// Throws WireError on set flags or a length over `cap`.
Header decode_header(std::span<const std::uint8_t> b, std::uint32_t cap = kMaxPayload);

struct Frame {
    MsgType type{};
    Bytes payload;
};
// Header + payload, ready for the socket. Throws WireError if the payload is over the cap (our bug).
Bytes encode_frame(const Frame& f);

// Incremental decoder for a byte stream (tests, and any reader without exact-size reads).
class FrameDecoder {
public:
    void feed(std::span<const std::uint8_t> b) { buf_.insert(buf_.end(), b.begin(), b.end()); }
    // The next complete frame, or false if more bytes are needed. Throws WireError on a bad header.
    bool next(Frame& out);
    std::size_t buffered() const { return buf_.size(); }

private:
    Bytes buf_;
};

// ---- bounded payload writer/reader (network byte order; base/byte_cursor.hpp) ----
// The relay's dialect of it: strings are u16-length-prefixed with the field's cap, and a short or
// over-long payload is a WireError.
class Writer : public ByteWriter<Bytes, WireError> {
public:
    void str(std::string_view s, std::size_t cap) { str16(s, cap); }
};

class Reader : public ByteReader<WireError> {
public:
    explicit Reader(std::span<const std::uint8_t> b) : ByteReader(b) {}
    std::string str(std::size_t cap, std::string_view field) { return str16(cap, field); }
};

}  // namespace tn::relay
