// tn-exec serve --stdio's request stream (tools/tn-exec/serve_proto) as the server reads it from the
// program that drives it: bytes cut into lines in pieces of 1-64 bytes (byte 0 picks the piece
// sizes' seed), each line parsed into a request; a request with "data_bytes" takes that many raw bytes
// off the stream, as serve does. Invariants: no line longer than the cap ever comes out, a parsed
// request is one the server can act on, base64 it decoded re-encodes to its input, raw data comes
// whole (exactly the bytes announced) or skipped when over its cap, once per announcement unless the
// input ends inside it.
#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.hpp"
#include "tools/tn-exec/serve_proto.hpp"

using namespace tn::exec;

namespace {

constexpr std::size_t cap = 4096;  // serve's cap is 8 MiB; a small one lets the fuzzer cross it

struct Raw {
    std::uint64_t announced = 0, delivered = 0;
};

// A refused request's announced data still comes off the stream (serve does the same), or its bytes
// would be read as the next lines.
void take_raw(const ServeRequest& rq, LineSplitter& lines, Raw& raw);

void check(const std::string& line, LineSplitter& lines, Raw& raw) {
    if (line.size() > cap || line.empty() || line.find('\n') != std::string::npos) __builtin_trap();
    ServeRequest rq;
    try {
        parse_request(line, rq);
    } catch (const tn::Error& e) {
        if (e.code() != tn::ExitCode::data) __builtin_trap();  // not JSON or not base64: 65 only
        return take_raw(rq, lines, raw);
    } catch (const tn::ParseError&) {
        return take_raw(rq, lines, raw);
    }
    if (rq.op.empty() || rq.host.empty()) __builtin_trap();
    if (rq.op == "run" && rq.command.empty()) __builtin_trap();
    if (rq.mode > 07777) __builtin_trap();
    if (rq.timeout && !(*rq.timeout > 0)) __builtin_trap();
    if (rq.id != "null" && (rq.id.size() < 2 || rq.id.front() != '"' || rq.id.back() != '"')) __builtin_trap();
    if (rq.op == "put" && b64_decode(b64_encode(rq.data)) != rq.data) __builtin_trap();
    take_raw(rq, lines, raw);
}

void take_raw(const ServeRequest& rq, LineSplitter& lines, Raw& raw) {
    if (!rq.data_bytes) return;
    std::uint64_t n = *rq.data_bytes;
    ++raw.announced;
    lines.take_raw(n, cap, [n, &raw](std::string&& data, bool skipped) {
        if (skipped ? (n <= cap || !data.empty()) : data.size() != n) __builtin_trap();
        ++raw.delivered;
    });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::uint32_t seed = data[0];
    std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    LineSplitter lines(cap);
    Raw raw;
    auto on_line = [&](const std::string& line) { check(line, lines, raw); };
    std::size_t too_long = 0, at = 0;
    while (at < rest.size()) {
        seed = seed * 1103515245u + 12345u;
        std::size_t n = std::min<std::size_t>(1 + (seed >> 16) % 64, rest.size() - at);
        lines.feed(rest.substr(at, n), on_line, [&] { ++too_long; });
        at += n;
    }
    lines.finish(on_line);
    if (too_long > rest.size() / cap) __builtin_trap();
    if (raw.delivered + (lines.raw_missing() > 0 ? 1 : 0) != raw.announced) __builtin_trap();
    // The payload alone, as base64: strict decoding either refuses it or round-trips.
    try {
        auto bytes = b64_decode(rest);
        if (b64_encode(bytes) != rest) __builtin_trap();
    } catch (const tn::Error&) {
    }
    return 0;
}
