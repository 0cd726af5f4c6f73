// The ClientHello SNI reader (lib/relay/sni) against real OpenSSL ClientHellos (the golden bytes) and
// hand-built ones: every cut of a hello is need_more, never a verdict on bytes that did not come;
// every malformed length, a 300-byte name, a missing name and oversized input get their verdict.
#include <catch2/catch.hpp>

#include <openssl/ssl.h>

#include <string>
#include <vector>

#include "relay/sni.hpp"

using namespace tn::relay;
using Bytes = std::vector<std::uint8_t>;

namespace {

// What OpenSSL's client sends first for `host` ("" = no SNI): the golden bytes.
Bytes openssl_hello(const std::string& host) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL* ssl = SSL_new(ctx);
    BIO* rd = BIO_new(BIO_s_mem());
    BIO* wr = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, rd, wr);
    if (!host.empty()) SSL_set_tlsext_host_name(ssl, host.c_str());
    SSL_connect(ssl);  // wants to read the ServerHello: the ClientHello is in `wr`
    char* p = nullptr;
    long n = BIO_get_mem_data(wr, &p);
    Bytes out(p, p + n);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return out;
}

void put16(Bytes& b, std::size_t v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
}

Bytes sni_ext(const std::string& host, std::uint8_t type = 0) {
    Bytes name{type};
    put16(name, host.size());
    name.insert(name.end(), host.begin(), host.end());
    Bytes e;
    put16(e, 0);
    put16(e, name.size() + 2);
    put16(e, name.size());
    e.insert(e.end(), name.begin(), name.end());
    return e;
}

// A ClientHello handshake message with these extensions (already type+length framed); `exts`
// nullptr leaves the extensions block out.
Bytes hello_message(const Bytes* exts) {
    Bytes body{3, 3};
    body.resize(body.size() + 32, 7);  // random
    body.push_back(0);                 // session id
    put16(body, 2);
    body.push_back(0x13);
    body.push_back(0x01);
    body.push_back(1);
    body.push_back(0);  // null compression
    if (exts) {
        put16(body, exts->size());
        body.insert(body.end(), exts->begin(), exts->end());
    }
    Bytes m{1, 0};
    put16(m, body.size());
    m.insert(m.end(), body.begin(), body.end());
    return m;
}

// `msg` in records of at most `frag` bytes.
Bytes records(const Bytes& msg, std::size_t frag = 16384) {
    Bytes out;
    for (std::size_t at = 0; at < msg.size(); at += frag) {
        auto n = std::min(frag, msg.size() - at);
        out.insert(out.end(), {22, 3, 1});
        put16(out, n);
        out.insert(out.end(), msg.begin() + static_cast<long>(at), msg.begin() + static_cast<long>(at + n));
    }
    return out;
}

Bytes hello(const std::string& host, std::size_t frag = 16384) {
    auto e = sni_ext(host);
    return records(hello_message(&e), frag);
}

}  // namespace

TEST_CASE("a real OpenSSL ClientHello gives its server name, lowercased; every cut of it needs more") {
    auto h = openssl_hello("Site1.Example.TEST");
    REQUIRE(h.size() > 100);
    auto r = parse_client_hello(h);
    CHECK(r.state == SniState::ok);
    CHECK(r.host == "site1.example.test");
    for (std::size_t n = 0; n < h.size(); ++n) {
        auto cut = parse_client_hello(std::span(h).first(n));
        INFO("cut at " << n);
        REQUIRE(cut.state == SniState::need_more);
    }
    // Bytes after the hello (a client that sent on) do not change the verdict.
    h.insert(h.end(), {23, 3, 3, 0, 1, 0});
    CHECK(parse_client_hello(h).host == "site1.example.test");
}

TEST_CASE("a real ClientHello without SNI is no_sni") {
    auto r = parse_client_hello(openssl_hello(""));
    CHECK(r.state == SniState::no_sni);
    CHECK(r.why.find("server name") != std::string::npos);
}

TEST_CASE("a ClientHello split over many records is put together") {
    auto h = hello("a.example.org", 7);
    CHECK(parse_client_hello(h).host == "a.example.org");
    CHECK(parse_client_hello(std::span(h).first(h.size() - 1)).state == SniState::need_more);
}

TEST_CASE("server names that are not DNS names, or too long, are bad") {
    CHECK(parse_client_hello(hello(std::string(300, 'a'))).state == SniState::bad);  // the 300-byte SNI
    auto long_name = std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." + std::string(63, 'd');
    CHECK(parse_client_hello(hello(long_name)).state == SniState::bad);  // 255 bytes
    for (const char* h : {"a.example.org.", "*.example.org", "a b.org", "a..b", "-a.org", "a\x1b.org", "10.0.0.1:443", ""}) {
        INFO(h);
        CHECK(parse_client_hello(hello(h)).state == SniState::bad);
    }
    CHECK(parse_client_hello(hello("x.example.org")).state == SniState::ok);
}

TEST_CASE("a server_name list with no host_name entry is no_sni; two host names are bad") {
    auto other = sni_ext("a.org", 1);
    CHECK(parse_client_hello(records(hello_message(&other))).state == SniState::no_sni);
    Bytes none;
    CHECK(parse_client_hello(records(hello_message(&none))).state == SniState::no_sni);
    CHECK(parse_client_hello(records(hello_message(nullptr))).state == SniState::no_sni);
    auto twice = sni_ext("a.org");
    auto second = sni_ext("b.org");
    twice.insert(twice.end(), second.begin(), second.end());  // the same extension type twice
    CHECK(parse_client_hello(records(hello_message(&twice))).state == SniState::bad);
}

TEST_CASE("bytes that are not a TLS handshake are refused at the first byte that shows it") {
    const std::uint8_t get[] = {'G', 'E', 'T'};
    CHECK(parse_client_hello(get).state == SniState::bad);
    const std::uint8_t ssh[] = {22, 2};  // SSLv2-ish record version
    CHECK(parse_client_hello(ssh).state == SniState::bad);
    const std::uint8_t zero_len[] = {22, 3, 1, 0, 0};
    CHECK(parse_client_hello(zero_len).state == SniState::bad);
    const std::uint8_t huge[] = {22, 3, 1, 0x40, 0x01};  // 16385 > 2^14
    CHECK(parse_client_hello(huge).state == SniState::bad);
    const std::uint8_t server_hello[] = {22, 3, 3, 0, 4, 2, 0, 0, 0};
    CHECK(parse_client_hello(server_hello).state == SniState::bad);
    const std::uint8_t empty[] = {22};
    CHECK(parse_client_hello(std::span(empty).first(0)).state == SniState::need_more);
}

TEST_CASE("lengths inside the hello that point past its end are bad, never read") {
    auto e = sni_ext("a.org");
    auto m = hello_message(&e);
    // Each length byte (the low one of two-byte lengths) made 40 larger: session id 38, cipher suites
    // 40, compression 43, extensions 46, server_name extension 50, name list 52, host name 55.
    REQUIRE(m.size() == 56 + 5);
    for (std::size_t i : {38, 40, 43, 46, 50, 52, 55}) {
        auto bad = m;
        bad[i] = static_cast<std::uint8_t>(bad[i] + 40);
        INFO("length byte at " << i);
        CHECK(parse_client_hello(records(bad)).state == SniState::bad);
    }
    auto big = m;  // a handshake length over kMaxHelloMessage
    big[1] = 1;
    CHECK(parse_client_hello(records(big)).state == SniState::bad);
}

TEST_CASE("no verdict needs more than kMaxHelloBytes") {
    // A maximal message in 1-byte records cannot fit: bad once the cap is reached, not need_more.
    Bytes pad(kMaxHelloMessage - 100, 0);
    Bytes ext;
    put16(ext, 21);  // padding extension
    put16(ext, pad.size());
    ext.insert(ext.end(), pad.begin(), pad.end());
    auto tiny = records(hello_message(&ext), 1);
    REQUIRE(tiny.size() > kMaxHelloBytes);
    CHECK(parse_client_hello(std::span(tiny).first(kMaxHelloBytes)).state == SniState::bad);
    // The same message in full records fits, and without SNI is no_sni.
    CHECK(parse_client_hello(records(hello_message(&ext))).state == SniState::no_sni);
}

TEST_CASE("alert records are fatal alerts of the given description") {
    auto a = alert_record(TlsAlert::unrecognized_name);
    CHECK(a == std::array<std::uint8_t, 7>{21, 3, 1, 0, 2, 2, 112});
}
