// Encoders and decoders of every relay message, field by field as doc/PROTOCOL.relay.md §4 lists them.
#include "relay/messages.hpp"

#include <algorithm>

namespace tn::relay {

namespace {
bool flag(Reader& r) {
    auto v = r.u8();
    if (v > 1) throw WireError("boolean field is neither 0 nor 1");
    return v == 1;
}
// A human-readable text field, cut to its cap on the way out.
void text(Writer& w, const std::string& s) { w.str(s.substr(0, kTextMax), kTextMax); }

// The messages of the same shape share one codec each: a result (SERVE_RESULT, UNSERVE_REPLY,
// UNSERVE_RESULT), an unserve request (UNSERVE_REQ to the route, UNSERVE_ASK to the target, whose
// `peer` is the target or the asking vnet), a pooled link's proof (LINK_PARK, LINK_STANDBY).
template <class M>
void put_result(Writer& w, const M& m) {
    w.u32(m.req);
    w.u8(m.ok ? 1 : 0);
    w.u16(m.id);
    text(w, m.message);
}
template <class M>
M get_result(Reader& r) {
    M m;
    m.req = r.u32();
    m.ok = flag(r);
    m.id = r.u16();
    m.message = r.str(kTextMax, "message");
    return m;
}
template <auto Peer, class M>
void put_unserve(Writer& w, const M& m) {
    w.u32(m.req);
    w.u32(m.*Peer);
    w.str(m.ip, 255);
    w.u16(m.port);
}
template <auto Peer, class M>
M get_unserve(Reader& r) {
    M m;
    m.req = r.u32();
    m.*Peer = r.u32();
    m.ip = r.str(255, "ip");
    m.port = r.u16();
    return m;
}
// A link's cipher and, when sealed, the key box after it (LINK_OPEN, LINK_OK). The cipher byte's top
// bit is the end-to-end flag (§12): it says nothing about the box.
template <class M>
void put_sealing(Writer& w, const M& m) {
    w.u8(m.cipher);
    if ((m.cipher & 0x7f) != 0) w.raw(m.key_box);
}
template <class M>
void get_sealing(Reader& r, M& m) {
    m.cipher = r.u8();
    if ((m.cipher & 0x7f) != 0) m.key_box = r.fixed<48>();
}
template <class M>
void put_pooled(Writer& w, const M& m) {
    w.u32(m.vnet_id);
    w.raw(m.mac);
}
template <class M>
M get_pooled(Reader& r) {
    M m;
    m.vnet_id = r.u32();
    m.mac = r.fixed<32>();
    return m;
}
}  // namespace

void ServeSpec::put(Writer& w) const {
    w.u16(id);
    w.str(name, kNameMax);
    w.str(type, 16);
    w.str(ip, 255);
    w.u16(port);
    w.str(info, 255);
    w.u16(remote_port);
    w.u8(unserve ? 1 : 0);
    w.u8(static_cast<std::uint8_t>(std::min(domains.size(), kMaxDomains)));
    for (std::size_t i = 0; i < domains.size() && i < kMaxDomains; ++i) w.str(domains[i], kDomainMax);
}
ServeSpec ServeSpec::get(Reader& r) {
    ServeSpec s;
    s.id = r.u16();
    s.name = r.str(kNameMax, "serve name");
    s.type = r.str(16, "serve type");
    s.ip = r.str(255, "serve ip");
    s.port = r.u16();
    s.info = r.str(255, "serve info");
    s.remote_port = r.u16();
    s.unserve = flag(r);
    auto n = r.u8();
    if (n > kMaxDomains) throw WireError("serve has " + std::to_string(n) + " custom domains (cap " + std::to_string(kMaxDomains) + ")");
    for (std::uint8_t i = 0; i < n; ++i) s.domains.push_back(r.str(kDomainMax, "custom domain"));
    return s;
}

void Challenge::put(Writer& w) const { w.raw(nonce); }
Challenge Challenge::get(Reader& r) { return {r.fixed<32>()}; }

void Auth::put(Writer& w) const {
    w.str(group, kNameMax);
    w.str(name, kNameMax);
    w.u64(instance);
    w.raw(nonce);
    w.raw(mac);
}
Auth Auth::get(Reader& r) {
    Auth a;
    a.group = r.str(kNameMax, "group");
    a.name = r.str(kNameMax, "vnet name");
    a.instance = r.u64();
    a.nonce = r.fixed<32>();
    a.mac = r.fixed<32>();
    return a;
}

void Welcome::put(Writer& w) const {
    w.u32(vnet_id);
    w.raw(ticket);
    w.raw(mac);
    w.u32(heartbeat_ms);
}
Welcome Welcome::get(Reader& r) {
    Welcome m;
    m.vnet_id = r.u32();
    m.ticket = r.fixed<16>();
    m.mac = r.fixed<32>();
    m.heartbeat_ms = r.u32();
    return m;
}

void ErrorMsg::put(Writer& w) const {
    w.u16(static_cast<std::uint16_t>(code));
    text(w, message);
}
ErrorMsg ErrorMsg::get(Reader& r) {
    ErrorMsg m;
    m.code = static_cast<ErrorCode>(r.u16());
    m.message = r.str(kTextMax, "error message");
    return m;
}

void Serve::put(Writer& w) const {
    w.u32(req);
    spec.put(w);
}
Serve Serve::get(Reader& r) {
    Serve m;
    m.req = r.u32();
    m.spec = ServeSpec::get(r);
    return m;
}

void ServeResult::put(Writer& w) const { put_result(w, *this); }
ServeResult ServeResult::get(Reader& r) { return get_result<ServeResult>(r); }

void ServeClose::put(Writer& w) const { w.u16(id); }
ServeClose ServeClose::get(Reader& r) { return {r.u16()}; }

void ServeUp::put(Writer& w) const {
    entry.spec.put(w);
    w.u32(entry.vnet_id);
    w.str(entry.vnet_name, kNameMax);
}
ServeUp ServeUp::get(Reader& r) {
    ServeUp m;
    m.entry.spec = ServeSpec::get(r);
    m.entry.vnet_id = r.u32();
    m.entry.vnet_name = r.str(kNameMax, "vnet name");
    return m;
}

void ServeDown::put(Writer& w) const { w.u16(id); }
ServeDown ServeDown::get(Reader& r) { return {r.u16()}; }

void VnetsReq::put(Writer& w) const { w.u32(req); }
VnetsReq VnetsReq::get(Reader& r) { return {r.u32()}; }

void Vnets::put(Writer& w) const {
    w.u32(req);
    w.u16(static_cast<std::uint16_t>(vnets.size()));
    for (const auto& v : vnets) {
        w.u32(v.id);
        w.str(v.name, kNameMax);
        w.u16(v.serves);
    }
}
Vnets Vnets::get(Reader& r) {
    Vnets m;
    m.req = r.u32();
    auto n = r.u16();
    if (n > 1024) throw WireError("vnet list over its cap");
    for (std::uint16_t i = 0; i < n; ++i) {
        VnetInfo v;
        v.id = r.u32();
        v.name = r.str(kNameMax, "vnet name");
        v.serves = r.u16();
        m.vnets.push_back(std::move(v));
    }
    return m;
}

void Ping::put(Writer& w) const { w.u64(token); }
Ping Ping::get(Reader& r) { return {r.u64()}; }
void Pong::put(Writer& w) const { w.u64(token); }
Pong Pong::get(Reader& r) { return {r.u64()}; }
void Heartbeat::put(Writer& w) const { w.u32(heartbeat_ms); }
Heartbeat Heartbeat::get(Reader& r) {
    Heartbeat m{r.u32()};
    if (m.heartbeat_ms < kMinHeartbeatMs || m.heartbeat_ms > kMaxHeartbeatMs)
        throw WireError("HEARTBEAT interval " + std::to_string(m.heartbeat_ms) + " ms is outside " +
                        std::to_string(kMinHeartbeatMs) + ".." + std::to_string(kMaxHeartbeatMs) + " ms");
    return m;
}

void UnserveReq::put(Writer& w) const { put_unserve<&UnserveReq::target>(w, *this); }
UnserveReq UnserveReq::get(Reader& r) { return get_unserve<&UnserveReq::target, UnserveReq>(r); }
void UnserveAsk::put(Writer& w) const { put_unserve<&UnserveAsk::from>(w, *this); }
UnserveAsk UnserveAsk::get(Reader& r) { return get_unserve<&UnserveAsk::from, UnserveAsk>(r); }

void UnserveReply::put(Writer& w) const { put_result(w, *this); }
UnserveReply UnserveReply::get(Reader& r) { return get_result<UnserveReply>(r); }
void UnserveResult::put(Writer& w) const { put_result(w, *this); }
UnserveResult UnserveResult::get(Reader& r) { return get_result<UnserveResult>(r); }

void LinkRequest::put(Writer& w) const {
    w.u64(link_id);
    w.u16(id);
    w.u8(early ? 1 : 0);
}
LinkRequest LinkRequest::get(Reader& r) {
    LinkRequest m;
    m.link_id = r.u64();
    m.id = r.u16();
    auto e = r.u8();
    if (e > 1) throw WireError("LINK_REQUEST early flag must be 0 or 1");
    m.early = e == 1;
    return m;
}
void LinkFail::put(Writer& w) const {
    w.u64(link_id);
    text(w, message);
}
LinkFail LinkFail::get(Reader& r) {
    LinkFail m;
    m.link_id = r.u64();
    m.message = r.str(kTextMax, "message");
    return m;
}
void LinkOpen::put(Writer& w) const {
    w.u32(vnet_id);
    w.u16(id);
    w.raw(mac);
    put_sealing(w, *this);
}
LinkOpen LinkOpen::get(Reader& r) {
    LinkOpen m;
    m.vnet_id = r.u32();
    m.id = r.u16();
    m.mac = r.fixed<32>();
    get_sealing(r, m);
    return m;
}
void LinkOpened::put(Writer& w) const { w.u64(link_id); }
LinkOpened LinkOpened::get(Reader& r) { return {r.u64()}; }
void LinkAccept::put(Writer& w) const {
    w.u32(vnet_id);
    w.u64(link_id);
    w.raw(mac);
}
LinkAccept LinkAccept::get(Reader& r) {
    LinkAccept m;
    m.vnet_id = r.u32();
    m.link_id = r.u64();
    m.mac = r.fixed<32>();
    return m;
}
void LinkOk::put(Writer& w) const {
    w.u64(link_id);
    put_sealing(w, *this);
}
LinkOk LinkOk::get(Reader& r) {
    LinkOk m;
    m.link_id = r.u64();
    get_sealing(r, m);
    return m;
}
void LinkPark::put(Writer& w) const { put_pooled(w, *this); }
LinkPark LinkPark::get(Reader& r) { return get_pooled<LinkPark>(r); }
void LinkStandby::put(Writer& w) const { put_pooled(w, *this); }
LinkStandby LinkStandby::get(Reader& r) { return get_pooled<LinkStandby>(r); }

}  // namespace tn::relay
