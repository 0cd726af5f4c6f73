// tn-forward -D's SOCKS5 server side (tools/tn-forward/socks5) against what any local client sends,
// arriving in pieces of any size. The first byte picks the piece size.
#include <cstdint>
#include <string>
#include <string_view>

#include "tools/tn-forward/socks5.hpp"

using tn::forward::Socks5;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
    std::size_t step = (data[0] % 17) + 1;
    Socks5 s;
    std::size_t fed = 0;
    for (std::size_t at = 0; at < in.size(); at += step) {
        if (s.state() == Socks5::State::done || s.state() == Socks5::State::failed) break;
        std::string_view piece = in.substr(at, step);
        fed += piece.size();
        std::string reply = s.feed(piece);
        if (reply.size() > 512) __builtin_trap();  // replies are a few bytes
    }
    if (s.state() == Socks5::State::done) {
        if (s.host().empty() || s.host().size() > 255) __builtin_trap();
        for (unsigned char c : s.host())
            if (c < 0x20 || c == 0x7f) __builtin_trap();  // a name with NUL or control bytes is refused
        // Bytes after the request are the client's first payload: never more than it sent.
        if (s.take_leftover().size() > fed) __builtin_trap();
    } else if (s.state() == Socks5::State::failed && s.error().empty()) {
        __builtin_trap();  // a refusal says why, for the log
    }
    (void)Socks5::reply(size % 2 == 0);
    return 0;
}
