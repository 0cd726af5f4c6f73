// Protocol version 5 binds both token proofs to the control connection's TLS session (its exporter
// value, RFC 8446 §7.5): real TLS 1.3 handshakes over loopback show that both ends of one session
// derive the same value, that two sessions differ, and so that a proof a man in the middle carries
// from one session into another fails there.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>

#include "relay/auth.hpp"
#include "relay/io_stream.hpp"
#include "relay/io_tls.hpp"

#include "loopback_pair.hpp"

using namespace tn::relay;
using namespace tn::relay::test;

namespace {
// One TLS 1.3 session over a loopback pair, handshaken by both ends; `E` as each end sees it.
struct Session {
    Binding client{}, server{};
};

Session handshake(asio::ssl::context& sctx, asio::ssl::context& cctx) {
    asio::io_context io;
    auto pr = connected(io);
    TlsConn c(std::move(pr.a), cctx.native_handle()), s(std::move(pr.b), sctx.native_handle());
    int done = 0;
    c.async_handshake(TlsConn::Role::client, [&](error_code ec) {
        REQUIRE_FALSE(ec);
        ++done;
    });
    s.async_handshake(TlsConn::Role::server, [&](error_code ec) {
        REQUIRE_FALSE(ec);
        ++done;
    });
    io.run();
    REQUIRE(done == 2);
    return {session_binding(c.ssl()), session_binding(s.ssl())};
}
}  // namespace

TEST_CASE("both ends of one TLS session derive the same binding; another session derives another") {
    TempDir d;
    ensure_certificate(d.p / "cert.pem", d.p / "key.pem");
    auto sctx = server_context(d.p / "cert.pem", d.p / "key.pem");
    auto cctx = client_context();
    auto one = handshake(sctx, cctx), two = handshake(sctx, cctx);
    CHECK(one.client == one.server);
    CHECK(two.client == two.server);
    CHECK(one.client != two.client);
    CHECK(one.client != Binding{});  // not the tls = false value
    CHECK(session_binding(nullptr) == Binding{});

    // A man in the middle holds session one with the vnet and session two with the route: the
    // vnet's proof (made over one) fails the route's check (over two), and so does the route's.
    auto nr = random_nonce(), nv = random_nonce();
    auto proof = vnet_proof("token", nr, nv, "g", "n", one.client);
    CHECK(equal(proof, vnet_proof("token", nr, nv, "g", "n", one.server)));
    CHECK_FALSE(equal(proof, vnet_proof("token", nr, nv, "g", "n", two.server)));
    auto back = route_proof("token", nv, nr, two.server);
    CHECK(equal(back, route_proof("token", nv, nr, two.client)));
    CHECK_FALSE(equal(back, route_proof("token", nv, nr, one.client)));
}
