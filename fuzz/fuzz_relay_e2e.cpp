// The end-to-end link handshake (lib/relay/e2e, PROTOCOL.relay.md §12) as a hostile route or vnet
// delivers it: the input is one handshake record's plaintext. It must parse exactly or throw
// WireError; a parsed message must never pass either side's check unless it was made with the secret
// (the seeds hold one that was, for the vectors' key pair), and then both sides derive one key.
#include <cstdint>

#include "relay/e2e.hpp"

using namespace tn::relay;

namespace {
template <std::size_t N> std::array<std::uint8_t, N> seq(std::uint8_t from) {
    std::array<std::uint8_t, N> a{};
    for (std::size_t i = 0; i < N; ++i) a[i] = static_cast<std::uint8_t>(from + i);
    return a;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const E2eSecret psk = seq<32>(0x40);
    static const E2eEphemeral ei(seq<32>(0x00)), er(seq<32>(0x20));
    const E2eContext ctx{700, 42};
    E2eMsg m;
    try {
        m = parse_e2e({data, size});
    } catch (const WireError&) {
        return 0;
    }
    if (size != kE2eMsgSize || encode_e2e(m) != [&] {
            std::array<std::uint8_t, kE2eMsgSize> b{};
            std::copy_n(data, kE2eMsgSize, b.begin());
            return b;
        }())
        __builtin_trap();  // what parsed must be exactly what came in
    E2eMsg reply;
    auto r = e2e_respond(psk, er, ctx, m, reply);
    if (r.ok) {
        // Only the using side's own message checks: then it finishes with the same key.
        if (m.eph != ei.pk || m.mac != e2e_init(psk, ei, ctx).mac) __builtin_trap();
        auto u = e2e_finish(psk, ei, ctx, reply);
        if (!u.ok || u.key != r.key) __builtin_trap();
    }
    // Taken as the serving side's answer to the vectors' first message: it must not check.
    if (e2e_finish(psk, ei, ctx, m).ok && m.eph != er.pk) __builtin_trap();
    return 0;
}
