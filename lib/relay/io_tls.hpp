// TLS for relay connections: the route's self-signed certificate (made on first start), its SHA-256
// fingerprint, and the client check that pins it. OpenSSL behind Asio's ssl::context.
#pragma once

#include <utility>  // before Asio (Boost 1.74 needs it for std::exchange)

#include <boost/asio/ssl.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>

namespace tn::relay {

// Loads cert/key, generating a self-signed P-256 certificate (key 0600) when both are absent.
// Returns true when it generated them. Throws tn::Error(config/io) on a half-present pair or failure.
bool ensure_certificate(const std::filesystem::path& cert, const std::filesystem::path& key);

// "sha256:" + 64 lowercase hex digits of the DER certificate's SHA-256.
std::string cert_fingerprint(const std::filesystem::path& cert);
std::string fingerprint_of(X509* cert);
// Normalises a user-typed fingerprint (any case, with or without colons or the sha256: prefix);
// empty when it is not 32 bytes of hex.
std::string normalize_fingerprint(const std::string& s);

boost::asio::ssl::context server_context(const std::filesystem::path& cert, const std::filesystem::path& key);
// A client context that accepts any chain in the handshake: the caller checks the pinned fingerprint
// of the peer certificate right after it (there is no CA for a self-signed relay).
boost::asio::ssl::context client_context();
// The peer certificate's fingerprint of an established TLS connection ("" if none).
std::string peer_fingerprint(SSL* ssl);
// The value both token proofs are bound to (auth.hpp `Binding`): the TLS exporter of `ssl`'s
// session, or zeros for a plain connection (ssl == nullptr).
std::array<std::uint8_t, 32> session_binding(SSL* ssl);

}  // namespace tn::relay
