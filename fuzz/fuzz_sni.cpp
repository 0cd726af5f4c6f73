// tn-route's TLS ClientHello reader (lib/relay/sni) against whatever a client sends to [http]
// listen_tls. Checks the reader's promises: a verdict on a prefix never changes when more bytes come
// (the route decides on what has arrived), an accepted name is a bounded DNS name, and need_more
// never holds past kMaxHelloBytes.
#include <cstdint>
#include <span>

#include "relay/sni.hpp"

using namespace tn::relay;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::uint8_t> in(data, size);
    auto r = parse_client_hello(in);
    switch (r.state) {
        case SniState::ok:
            if (r.host.empty() || r.host.size() > 253 || r.host.back() == '.' || r.host.find('*') != std::string::npos) __builtin_trap();
            for (char c : r.host)
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) __builtin_trap();
            break;
        case SniState::need_more:
            if (size >= kMaxHelloBytes) __builtin_trap();
            break;
        case SniState::bad:
        case SniState::no_sni:
            if (r.why.empty()) __builtin_trap();
            break;
    }
    // A decided prefix stays decided the same way with the rest of the bytes after it.
    if (size > 1) {
        auto half = parse_client_hello(in.first(size / 2));
        if (half.state != SniState::need_more && (half.state != r.state || half.host != r.host)) __builtin_trap();
    }
    return 0;
}
