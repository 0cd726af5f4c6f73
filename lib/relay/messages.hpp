// The relay message catalogue (doc/PROTOCOL.relay.md §4): one struct per message with its encoder and
// decoder, and to_frame()/from_frame() to move between structs and frames.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "relay/wire.hpp"

namespace tn::relay {

inline constexpr std::size_t kMaxDomains = 16, kDomainMax = 253;
// A heartbeat interval a vnet accepts in HEARTBEAT: 20 ms is the floor it always put under WELCOME's
// value (TN_RELAY_TIME_SCALE makes tests' intervals short); a minute is six times the route's cap of
// 10 s, so a route that sends more is broken, not busy.
inline constexpr std::uint32_t kMinHeartbeatMs = 20, kMaxHeartbeatMs = 60000;

struct ServeSpec {
    std::uint16_t id = 0;  // 0: let the route assign one
    std::string name;
    std::string type = "tcp";
    std::string ip = "127.0.0.1";
    std::uint16_t port = 0;
    std::string info;
    std::uint16_t remote_port = 0;
    bool unserve = false;  // registered on a peer's request (vnet-v2's unserve)
    // HTTP virtual hosts the route sends here by Host (frp's custom_domains): lowercase names, or
    // "*.example.com" wildcards; at most kMaxDomains of at most kDomainMax bytes each.
    std::vector<std::string> domains;
    void put(Writer& w) const;
    static ServeSpec get(Reader& r);
};

struct ServeEntry {
    ServeSpec spec;
    std::uint32_t vnet_id = 0;
    std::string vnet_name;
};

#define TN_RELAY_MSG(Name, Type)                       \
    static constexpr MsgType kType = MsgType::Type;    \
    void put(Writer& w) const;                         \
    static Name get(Reader& r)

struct Challenge { Nonce nonce{}; TN_RELAY_MSG(Challenge, challenge); };
struct Auth {
    std::string group, name;
    std::uint64_t instance = 0;
    Nonce nonce{};
    Mac mac{};
    TN_RELAY_MSG(Auth, auth);
};
struct Welcome {
    std::uint32_t vnet_id = 0;
    Ticket ticket{};
    Mac mac{};
    std::uint32_t heartbeat_ms = 5000;
    TN_RELAY_MSG(Welcome, welcome);
};
struct ErrorMsg {
    ErrorCode code = ErrorCode::internal;
    std::string message;
    TN_RELAY_MSG(ErrorMsg, error);
};
struct Serve { std::uint32_t req = 0; ServeSpec spec; TN_RELAY_MSG(Serve, serve); };
struct ServeResult {
    std::uint32_t req = 0;
    bool ok = false;
    std::uint16_t id = 0;
    std::string message;
    TN_RELAY_MSG(ServeResult, serve_result);
};
struct ServeClose { std::uint16_t id = 0; TN_RELAY_MSG(ServeClose, serve_close); };
struct ServeUp { ServeEntry entry; TN_RELAY_MSG(ServeUp, serve_up); };
struct ServeDown { std::uint16_t id = 0; TN_RELAY_MSG(ServeDown, serve_down); };
struct VnetsReq { std::uint32_t req = 0; TN_RELAY_MSG(VnetsReq, vnets_req); };
struct VnetInfo {
    std::uint32_t id = 0;
    std::string name;
    std::uint16_t serves = 0;
};
struct Vnets { std::uint32_t req = 0; std::vector<VnetInfo> vnets; TN_RELAY_MSG(Vnets, vnets); };
struct Ping { std::uint64_t token = 0; TN_RELAY_MSG(Ping, ping); };
struct Pong { std::uint64_t token = 0; TN_RELAY_MSG(Pong, pong); };
// Version 6, route -> vnet, right behind a PONG: "from now on send PING every heartbeat_ms". A value
// outside kMinHeartbeatMs..kMaxHeartbeatMs is a protocol error.
struct Heartbeat { std::uint32_t heartbeat_ms = 5000; TN_RELAY_MSG(Heartbeat, heartbeat); };
struct UnserveReq {
    std::uint32_t req = 0, target = 0;
    std::string ip;
    std::uint16_t port = 0;
    TN_RELAY_MSG(UnserveReq, unserve_req);
};
struct UnserveAsk {
    std::uint32_t req = 0, from = 0;
    std::string ip;
    std::uint16_t port = 0;
    TN_RELAY_MSG(UnserveAsk, unserve_ask);
};
struct UnserveReply {
    std::uint32_t req = 0;
    bool ok = false;
    std::uint16_t id = 0;
    std::string message;
    TN_RELAY_MSG(UnserveReply, unserve_reply);
};
struct UnserveResult {
    std::uint32_t req = 0;
    bool ok = false;
    std::uint16_t id = 0;
    std::string message;
    TN_RELAY_MSG(UnserveResult, unserve_result);
};
// `early`: connect the local service while the link is bound (a refusal then closes the link);
// otherwise connect first, so a failure is a LINK_FAIL the route can answer (an HTTP 502 for a vhost
// client). On a standby link an early request is followed by LINK_OK at once, with no LINK_ACCEPT.
struct LinkRequest {
    std::uint64_t link_id = 0;
    std::uint16_t id = 0;
    bool early = false;
    TN_RELAY_MSG(LinkRequest, link_request);
};
struct LinkFail { std::uint64_t link_id = 0; std::string message; TN_RELAY_MSG(LinkFail, link_fail); };
// Link setup frames prove the session without revealing its ticket: `mac` is link_proof() over the
// route's CHALLENGE on this very connection (auth.hpp), so a recorded frame is worth nothing elsewhere.
// `cipher` 0: a plain link. Otherwise the using vnet drew the link key and boxed it for the route
// (BoxWay::to_route, seal.hpp); its sealed records may follow at once, before any answer.
struct LinkOpen {
    std::uint32_t vnet_id = 0;
    std::uint16_t id = 0;
    Mac mac{};
    std::uint8_t cipher = 0;
    std::array<std::uint8_t, 48> key_box{};
    TN_RELAY_MSG(LinkOpen, link_open);
};
// The route's answer to LINK_OPEN (an ERROR otherwise), before any relayed byte: the link's id (for
// logs; a sealed link gets it right before the serving side's first record).
struct LinkOpened { std::uint64_t link_id = 0; TN_RELAY_MSG(LinkOpened, link_opened); };
struct LinkAccept {
    std::uint32_t vnet_id = 0;
    std::uint64_t link_id = 0;
    Mac mac{};
    TN_RELAY_MSG(LinkAccept, link_accept);
};
// `cipher` 0: a plain link (tls = false), raw bytes follow. Otherwise the records that follow are
// sealed with the link key in `key_box` (seal.hpp), which only this endpoint can open.
struct LinkOk {
    std::uint64_t link_id = 0;
    std::uint8_t cipher = 0;
    std::array<std::uint8_t, 48> key_box{};
    TN_RELAY_MSG(LinkOk, link_ok);
};
// Pre-opened links (a pool that keeps connection setup to one round trip): a parked link waits for
// its LINK_OPEN; a standby link waits for the route to send it a LINK_REQUEST.
struct LinkPark {
    std::uint32_t vnet_id = 0;
    Mac mac{};
    TN_RELAY_MSG(LinkPark, link_park);
};
struct LinkStandby {
    std::uint32_t vnet_id = 0;
    Mac mac{};
    TN_RELAY_MSG(LinkStandby, link_standby);
};

#undef TN_RELAY_MSG

template <class M> Frame to_frame(const M& m) {
    Writer w;
    m.put(w);
    return Frame{M::kType, w.take()};
}

// Throws WireError if the frame is of another type or its payload does not decode exactly.
template <class M> M from_frame(const Frame& f) {
    if (f.type != M::kType)
        throw WireError("expected " + std::string(type_name(M::kType)) + ", got " + std::string(type_name(f.type)));
    Reader r(f.payload);
    M m = M::get(r);
    r.finish();
    return m;
}

}  // namespace tn::relay
