// TLS ClientHello parsing for SNI (see sni.hpp): records are reassembled up to one handshake message,
// then the message is read with the bounded ByteReader; every length is checked against what is left.
#include "relay/sni.hpp"

#include <set>
#include <vector>

#include "base/byte_cursor.hpp"
#include "base/error.hpp"
#include "relay/registry.hpp"
#include "relay/wire.hpp"

namespace tn::relay {

namespace {

constexpr std::uint8_t kHandshake = 22, kClientHello = 1;
constexpr std::uint16_t kServerNameExt = 0;
constexpr std::size_t kMaxRecord = 16384;  // RFC 8446 §5.1: a plaintext fragment is at most 2^14 bytes

using Reader = ByteReader<WireError>;

SniResult verdict(SniState s, std::string why) {
    SniResult r;
    r.state = s;
    r.why = std::move(why);
    return r;
}

// The host_name of a server_name extension's data (RFC 6066 §3), or "" when it has none.
std::string server_name(std::span<const std::uint8_t> ext) {
    Reader r(ext, "server_name extension");
    auto list = r.bytes(r.u16());
    r.finish();
    if (list.empty()) throw WireError("empty server_name list");
    Reader names(list, "server_name list");
    std::string host;
    while (names.remaining() > 0) {
        auto type = names.u8();
        auto name = names.bytes(names.u16());
        if (type != 0) continue;  // no other name type is defined; skip rather than guess
        if (!host.empty()) throw WireError("two host names in server_name");
        if (name.empty()) throw WireError("an empty host name in server_name");
        if (name.size() > kDomainMax) throw WireError("a server name of " + std::to_string(name.size()) + " bytes (at most 253)");
        host.assign(name.begin(), name.end());
    }
    if (host.empty()) return host;
    if (host.back() == '.') throw WireError("a server name with a trailing dot");  // RFC 6066 §3
    if (host.find('*') != std::string::npos) throw WireError("a wildcard server name");
    try {
        return normalize_domain(host);
    } catch (const ParseError& e) {
        throw WireError(std::string("server name: ") + e.what());
    }
}

// The ClientHello body (after the 4-byte handshake header).
SniResult read_hello(std::span<const std::uint8_t> body) {
    Reader r(body, "ClientHello");
    if (r.u8() != 3) throw WireError("ClientHello version is not 3.x");
    r.u8();
    r.bytes(32);  // random
    auto sid = r.u8();
    if (sid > 32) throw WireError("session id longer than 32 bytes");
    r.bytes(sid);
    auto suites = r.u16();
    if (suites < 2 || suites % 2) throw WireError("bad cipher suite list length");
    r.bytes(suites);
    auto comp = r.u8();
    if (comp < 1) throw WireError("no compression method");
    r.bytes(comp);
    if (r.remaining() == 0) return verdict(SniState::no_sni, "a ClientHello without extensions");
    auto exts = r.bytes(r.u16());
    r.finish();
    Reader e(exts, "ClientHello extensions");
    std::set<std::uint16_t> seen;
    std::string host;
    while (e.remaining() > 0) {
        auto type = e.u16();
        auto data = e.bytes(e.u16());
        if (!seen.insert(type).second) throw WireError("extension " + std::to_string(type) + " twice");  // RFC 8446 §4.2
        if (type == kServerNameExt) host = server_name(data);
    }
    if (host.empty()) return verdict(SniState::no_sni, "a ClientHello without a server name (SNI)");
    SniResult ok;
    ok.state = SniState::ok;
    ok.host = std::move(host);
    return ok;
}

}  // namespace

SniResult parse_client_hello(std::span<const std::uint8_t> data) {
    // Bytes past the cap never count: the verdict on them is the verdict on the first kMaxHelloBytes.
    if (data.size() > kMaxHelloBytes) data = data.first(kMaxHelloBytes);
    std::vector<std::uint8_t> msg;  // the handshake bytes of the records so far
    std::size_t at = 0;
    try {
        for (;;) {
            // Each check runs as soon as its bytes are in: a wrong first byte is refused at once.
            if (data.size() > at && data[at] != kHandshake) throw WireError("not a TLS handshake record");
            if (data.size() > at + 1 && data[at + 1] != 3) throw WireError("record version is not 3.x");
            if (data.size() < at + 5) break;
            std::size_t len = (std::size_t{data[at + 3]} << 8) | data[at + 4];
            if (len == 0 || len > kMaxRecord) throw WireError("bad record length " + std::to_string(len));
            if (data.size() < at + 5 + len) break;
            msg.insert(msg.end(), data.begin() + static_cast<std::ptrdiff_t>(at + 5), data.begin() + static_cast<std::ptrdiff_t>(at + 5 + len));
            at += 5 + len;
            if (msg[0] != kClientHello) throw WireError("the first handshake message is not a ClientHello");
            if (msg.size() < 4) continue;
            std::size_t hlen = (std::size_t{msg[1]} << 16) | (std::size_t{msg[2]} << 8) | msg[3];
            if (hlen > kMaxHelloMessage) throw WireError("a ClientHello of " + std::to_string(hlen) + " bytes");
            if (msg.size() >= 4 + hlen) return read_hello(std::span(msg).subspan(4, hlen));
        }
    } catch (const WireError& e) {
        return verdict(SniState::bad, e.what());
    }
    if (data.size() >= kMaxHelloBytes) return verdict(SniState::bad, "no whole ClientHello in " + std::to_string(kMaxHelloBytes) + " bytes");
    return {};
}

std::array<std::uint8_t, 7> alert_record(TlsAlert alert) {
    return {21, 3, 1, 0, 2, 2, static_cast<std::uint8_t>(alert)};
}

}  // namespace tn::relay
