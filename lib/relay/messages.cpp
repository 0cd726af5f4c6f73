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
    w.str(message.substr(0, kTextMax), kTextMax);
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

void ServeResult::put(Writer& w) const {
    w.u32(req);
    w.u8(ok ? 1 : 0);
    w.u16(id);
    w.str(message.substr(0, kTextMax), kTextMax);
}
ServeResult ServeResult::get(Reader& r) {
    ServeResult m;
    m.req = r.u32();
    m.ok = flag(r);
    m.id = r.u16();
    m.message = r.str(kTextMax, "message");
    return m;
}

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

void UnserveReq::put(Writer& w) const {
    w.u32(req);
    w.u32(target);
    w.str(ip, 255);
    w.u16(port);
}
UnserveReq UnserveReq::get(Reader& r) {
    UnserveReq m;
    m.req = r.u32();
    m.target = r.u32();
    m.ip = r.str(255, "ip");
    m.port = r.u16();
    return m;
}
void UnserveAsk::put(Writer& w) const {
    w.u32(req);
    w.u32(from);
    w.str(ip, 255);
    w.u16(port);
}
UnserveAsk UnserveAsk::get(Reader& r) {
    UnserveAsk m;
    m.req = r.u32();
    m.from = r.u32();
    m.ip = r.str(255, "ip");
    m.port = r.u16();
    return m;
}

void UnserveReply::put(Writer& w) const {
    w.u32(req);
    w.u8(ok ? 1 : 0);
    w.u16(id);
    w.str(message.substr(0, kTextMax), kTextMax);
}
UnserveReply UnserveReply::get(Reader& r) {
    UnserveReply m;
    m.req = r.u32();
    m.ok = flag(r);
    m.id = r.u16();
    m.message = r.str(kTextMax, "message");
    return m;
}
void UnserveResult::put(Writer& w) const {
    w.u32(req);
    w.u8(ok ? 1 : 0);
    w.u16(id);
    w.str(message.substr(0, kTextMax), kTextMax);
}
UnserveResult UnserveResult::get(Reader& r) {
    UnserveResult m;
    m.req = r.u32();
    m.ok = flag(r);
    m.id = r.u16();
    m.message = r.str(kTextMax, "message");
    return m;
}

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
    w.str(message.substr(0, kTextMax), kTextMax);
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
    w.u8(cipher);
    if (cipher != 0) w.raw(key_box);
}
LinkOpen LinkOpen::get(Reader& r) {
    LinkOpen m;
    m.vnet_id = r.u32();
    m.id = r.u16();
    m.mac = r.fixed<32>();
    m.cipher = r.u8();
    if (m.cipher != 0) m.key_box = r.fixed<48>();
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
    w.u8(cipher);
    if (cipher != 0) w.raw(key_box);
}
LinkOk LinkOk::get(Reader& r) {
    LinkOk m;
    m.link_id = r.u64();
    m.cipher = r.u8();
    if (m.cipher != 0) m.key_box = r.fixed<48>();
    return m;
}
void LinkPark::put(Writer& w) const {
    w.u32(vnet_id);
    w.raw(mac);
}
LinkPark LinkPark::get(Reader& r) {
    LinkPark m;
    m.vnet_id = r.u32();
    m.mac = r.fixed<32>();
    return m;
}
void LinkStandby::put(Writer& w) const {
    w.u32(vnet_id);
    w.raw(mac);
}
LinkStandby LinkStandby::get(Reader& r) {
    LinkStandby m;
    m.vnet_id = r.u32();
    m.mac = r.fixed<32>();
    return m;
}

}  // namespace tn::relay
