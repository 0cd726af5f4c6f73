// Relay frames and messages (lib/relay/wire, messages) as a hostile peer sends them: a hello, then a
// byte stream cut into frames, each decoded as the message its type names. Any input must end in a
// decoded message or a WireError, never a crash, a hang or an allocation over the frame cap.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>

#include "relay/messages.hpp"

using namespace tn::relay;

namespace {

template <class M> void decode_as(const Frame& f) {
    M m = from_frame<M>(f);
    // The encoding is canonical (exact booleans, length-prefixed strings, no trailing bytes): what we
    // decoded encodes back to the very same payload, so the route never relays something it did not read.
    Frame again = to_frame(m);
    if (again.payload != f.payload) __builtin_trap();
}

void decode(const Frame& f) {
    switch (f.type) {
        case MsgType::challenge: return decode_as<Challenge>(f);
        case MsgType::auth: return decode_as<Auth>(f);
        case MsgType::welcome: return decode_as<Welcome>(f);
        case MsgType::error: return decode_as<ErrorMsg>(f);
        case MsgType::serve: return decode_as<Serve>(f);
        case MsgType::serve_result: return decode_as<ServeResult>(f);
        case MsgType::serve_close: return decode_as<ServeClose>(f);
        case MsgType::serve_up: return decode_as<ServeUp>(f);
        case MsgType::serve_down: return decode_as<ServeDown>(f);
        case MsgType::vnets_req: return decode_as<VnetsReq>(f);
        case MsgType::vnets: return decode_as<Vnets>(f);
        case MsgType::ping: return decode_as<Ping>(f);
        case MsgType::pong: return decode_as<Pong>(f);
        case MsgType::heartbeat: return decode_as<Heartbeat>(f);
        case MsgType::unserve_req: return decode_as<UnserveReq>(f);
        case MsgType::unserve_ask: return decode_as<UnserveAsk>(f);
        case MsgType::unserve_reply: return decode_as<UnserveReply>(f);
        case MsgType::unserve_result: return decode_as<UnserveResult>(f);
        case MsgType::link_request: return decode_as<LinkRequest>(f);
        case MsgType::link_fail: return decode_as<LinkFail>(f);
        case MsgType::link_open: return decode_as<LinkOpen>(f);
        case MsgType::link_accept: return decode_as<LinkAccept>(f);
        case MsgType::link_ok: return decode_as<LinkOk>(f);
        case MsgType::link_park: return decode_as<LinkPark>(f);
        case MsgType::link_standby: return decode_as<LinkStandby>(f);
        case MsgType::link_opened: return decode_as<LinkOpened>(f);
    }
    (void)type_name(f.type);  // unknown types are named in logs: that must not crash either
    throw WireError("unknown type");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::uint8_t> in(data, size);
    if (in.size() >= kHelloSize) {
        try {
            (void)decode_hello(in.first(kHelloSize));
        } catch (const WireError&) {
        }
        try {
            (void)decode_header(in.first(kHeaderSize));
        } catch (const WireError&) {
        }
    }
    // The stream after the hello arrives in pieces whose sizes the first byte picks.
    FrameDecoder dec;
    std::size_t step = in.empty() ? 1 : (in[0] % 61) + 1;
    try {
        for (std::size_t at = std::min(in.size(), kHelloSize); at < in.size(); at += step) {
            dec.feed(in.subspan(at, std::min(step, in.size() - at)));
            Frame f;
            while (dec.next(f)) {
                try {
                    decode(f);
                } catch (const WireError&) {
                }
            }
        }
    } catch (const WireError&) {
        // A bad header closes the connection: nothing more is read from it.
    }
    return 0;
}
