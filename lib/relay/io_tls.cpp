// Self-signed certificate generation, fingerprints and TLS contexts for tn-route and tn-vnet.
#include "relay/io_tls.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include <cstdio>
#include <memory>

#include "base/error.hpp"

namespace tn::relay {

namespace fs = std::filesystem;

namespace {
struct FileCloser {
    void operator()(FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;

FilePtr open_file(const fs::path& p, const char* mode, mode_t perm) {
    if (mode[0] == 'w') {
        int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, perm);
        if (fd < 0) throw Error(ExitCode::io, "cannot write " + p.string() + ": " + std::strerror(errno));
        return FilePtr(fdopen(fd, mode));
    }
    FilePtr f(std::fopen(p.c_str(), mode));
    if (!f) throw Error(ExitCode::io, "cannot read " + p.string() + ": " + std::strerror(errno));
    return f;
}

// Every byte of a link is encrypted twice more than over ssh -L (the route terminates TLS on both
// legs), so the cheapest strong AEAD goes first: AES-128-GCM (AES-NI), as ssh's aes128-gcm.
void prefer_aes128(SSL_CTX* ctx) {
    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384");
}

// Settings both ends share. Idle links hold no record buffers (a relay keeps thousands of them);
// busy ones read ahead, so one read(2) brings several records instead of two reads per record.
void tune(SSL_CTX* ctx) {
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);
    prefer_aes128(ctx);
}

X509Ptr read_cert(const fs::path& cert) {
    auto f = open_file(cert, "r", 0);
    X509Ptr x(PEM_read_X509(f.get(), nullptr, nullptr, nullptr), X509_free);
    if (!x) throw Error(ExitCode::config, cert.string() + ": not a PEM certificate");
    return x;
}

void generate(const fs::path& cert, const fs::path& key) {
    PkeyPtr pkey(EVP_EC_gen("P-256"), EVP_PKEY_free);
    if (!pkey) throw Error(ExitCode::io, "cannot generate a P-256 key");
    X509Ptr x(X509_new(), X509_free);
    X509_set_version(x.get(), 2);
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1) throw Error(ExitCode::io, "no random bytes");
    serial[0] &= 0x7f;
    auto* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x.get()));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x.get()), 20L * 365 * 24 * 3600);  // pinned, not CA-checked: no expiry churn
    X509_set_pubkey(x.get(), pkey.get());
    auto* name = X509_get_subject_name(x.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("tn-route"), -1, -1, 0);
    X509_set_issuer_name(x.get(), name);
    if (!X509_sign(x.get(), pkey.get(), EVP_sha256())) throw Error(ExitCode::io, "cannot sign the certificate");
    {
        auto f = open_file(key, "w", 0600);
        if (!PEM_write_PrivateKey(f.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr))
            throw Error(ExitCode::io, "cannot write " + key.string());
    }
    auto f = open_file(cert, "w", 0644);
    if (!PEM_write_X509(f.get(), x.get())) throw Error(ExitCode::io, "cannot write " + cert.string());
}
}  // namespace

bool ensure_certificate(const fs::path& cert, const fs::path& key) {
    bool c = fs::exists(cert), k = fs::exists(key);
    if (c && k) return false;
    if (c != k)
        throw Error(ExitCode::config, "only one of " + cert.string() + " and " + key.string() +
                                          " exists: remove it to generate a new pair, or supply both");
    if (!cert.parent_path().empty()) fs::create_directories(cert.parent_path());
    if (!key.parent_path().empty()) fs::create_directories(key.parent_path());
    generate(cert, key);
    return true;
}

std::string fingerprint_of(X509* x) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!x || !X509_digest(x, EVP_sha256(), md, &n)) return {};
    static const char* hex = "0123456789abcdef";
    std::string out = "sha256:";
    for (unsigned i = 0; i < n; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

std::string cert_fingerprint(const fs::path& cert) { return fingerprint_of(read_cert(cert).get()); }

std::string normalize_fingerprint(const std::string& s) {
    std::string t = s;
    if (t.size() > 7 && (t.compare(0, 7, "sha256:") == 0 || t.compare(0, 7, "SHA256:") == 0)) t = t.substr(7);
    std::string hex;
    for (char ch : t) {
        if (ch == ':') continue;
        if (!std::isxdigit(static_cast<unsigned char>(ch))) return {};
        hex += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    if (hex.size() != 64) return {};
    return "sha256:" + hex;
}

boost::asio::ssl::context server_context(const fs::path& cert, const fs::path& key) {
    namespace ssl = boost::asio::ssl;
    ssl::context ctx(ssl::context::tls_server);
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                    ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    ctx.use_certificate_chain_file(cert.string(), ec);
    if (ec) throw Error(ExitCode::config, cert.string() + ": " + ec.message());
    ctx.use_private_key_file(key.string(), ssl::context::pem, ec);
    if (ec) throw Error(ExitCode::config, key.string() + ": " + ec.message());
    // TLS 1.3 only: the token proofs are bound to the session by its exporter (RFC 8446 §7.5).
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_3_VERSION);
    tune(ctx.native_handle());
    // One session ticket per handshake (TLS 1.3 sends two by default): vnets resume the control
    // connection's session on links and never use a link's tickets.
    SSL_CTX_set_num_tickets(ctx.native_handle(), 1);
    return ctx;
}

boost::asio::ssl::context client_context() {
    namespace ssl = boost::asio::ssl;
    ssl::context ctx(ssl::context::tls_client);
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                    ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    ctx.set_verify_mode(ssl::verify_none);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_3_VERSION);
    tune(ctx.native_handle());
    return ctx;
}

std::array<std::uint8_t, 32> session_binding(SSL* ssl) {
    std::array<std::uint8_t, 32> out{};
    static constexpr char label[] = "EXPORTER-tn-relay-5 auth";
    if (ssl && SSL_export_keying_material(ssl, out.data(), out.size(), label, sizeof label - 1, nullptr, 0, 0) != 1)
        throw Error(ExitCode::io, "OpenSSL could not export keying material from the TLS session");
    return out;
}

std::string peer_fingerprint(SSL* ssl) {
    X509* x = SSL_get1_peer_certificate(ssl);
    std::string fp = fingerprint_of(x);
    X509_free(x);
    return fp;
}

}  // namespace tn::relay
