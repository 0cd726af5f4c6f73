// The server name (SNI, RFC 6066 §3) of a TLS ClientHello, read without opening the connection: what
// tn-route's [http] listen_tls needs to pick a serve by custom domain and relay the bytes unopened.
// Pure and bounded: it looks at the bytes it is given (the caller feeds everything read so far) and
// never needs more than kMaxHelloBytes to decide. doc/PROTOCOL.relay.md §10 has the rules.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace tn::relay {

// The largest ClientHello handshake message accepted (a post-quantum key share makes ~1.8 KB; one
// full record is 16 KiB), and the most bytes, record headers included, read before deciding.
inline constexpr std::size_t kMaxHelloMessage = 16384;
inline constexpr std::size_t kMaxHelloBytes = kMaxHelloMessage + 4 + 5 * 8;  // up to 8 records' headers

enum class SniState {
    need_more,  // a valid prefix: read on (the caller's cap is kMaxHelloBytes)
    ok,         // `host` holds the server name
    bad,        // not a TLS ClientHello, or one that breaks the format or our caps (`why`)
    no_sni,     // a well-formed ClientHello without a host_name server name
};

// The fatal alerts tn-route answers with (RFC 8446 §6.2).
enum class TlsAlert : std::uint8_t { handshake_failure = 40, decode_error = 50, internal_error = 80, unrecognized_name = 112 };

struct SniResult {
    SniState state = SniState::need_more;
    std::string host;  // ok: lowercased, a DNS name by normalize_domain's rules (no wildcard, no trailing dot)
    std::string why;   // bad or no_sni: for the log
};

SniResult parse_client_hello(std::span<const std::uint8_t> data);

// A fatal alert record as a server sends it before any handshake: content type 21, TLS 1.0 record
// version (what a server that has not chosen a version uses), level 2 (fatal), `alert`.
std::array<std::uint8_t, 7> alert_record(TlsAlert alert);

}  // namespace tn::relay
