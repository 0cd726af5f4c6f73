// TlsConn's read path over a real TLS 1.3 session on loopback: frame reads must never wait while the
// bytes they need are already in the socket or in the SSL object. The socket is registered
// edge-triggered (Asio's epoll reactor): each case lets the reactor take the socket's edge while no
// read is pending, then reads, so a read that waits for an edge already gone hangs and the bounded
// run fails the case.
#include <catch2/catch.hpp>

#include <openssl/bio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "relay/io_stream.hpp"
#include "relay/io_tls.hpp"
#include "relay/messages.hpp"

#include "loopback_pair.hpp"

using namespace tn::relay;
using namespace tn::relay::test;

namespace {
// Runs handlers until `done` holds; fails after a bound far above any honest run (a missed wakeup
// never comes, so only a hang reaches it).
template <class Pred>
void run_until(asio::io_context& io, Pred done) {
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!done() && std::chrono::steady_clock::now() < end) {
        io.restart();
        io.run_one_for(std::chrono::milliseconds(100));
    }
    REQUIRE(done());
}

// One blocking epoll_wait of the reactor that returns every descriptor ready now: the server socket's
// edge (its bytes are in already, loopback delivers inside send) goes by while no read waits on it.
void pass_edge(asio::io_context& io) {
    auto p = connected(io);
    bool fired = false;
    asio::write(p.a, asio::buffer("x", 1));
    p.b.async_wait(tcp::socket::wait_read, [&](error_code) { fired = true; });
    run_until(io, [&] { return fired; });
}

Bytes ping(std::uint64_t token) { return encode_frame(to_frame(Ping{token})); }

struct Session {
    asio::io_context io;
    TempDir d;
    asio::ssl::context sctx, cctx;
    std::unique_ptr<TlsConn> client;
    StreamPtr server;
    Session()
        : sctx((ensure_certificate(d.p / "cert.pem", d.p / "key.pem"),
                server_context(d.p / "cert.pem", d.p / "key.pem"))),
          cctx(client_context()) {
        auto pr = connected(io);
        client = std::make_unique<TlsConn>(std::move(pr.a), cctx.native_handle());
        server = std::make_shared<Stream>(std::move(pr.b), sctx);
        int done = 0;
        client->async_handshake(TlsConn::Role::client, [&](error_code ec) {
            REQUIRE_FALSE(ec);
            ++done;
        });
        server->tls_conn().async_handshake(TlsConn::Role::server, [&](error_code ec) {
            REQUIRE_FALSE(ec);
            ++done;
        });
        run_until(io, [&] { return done == 2; });
    }
    // One SSL_write per piece: each piece is one TLS record.
    void write(const std::vector<Bytes>& pieces) {
        for (const auto& b : pieces) {
            std::size_t n = 0;
            REQUIRE(SSL_write_ex(client->ssl(), b.data(), b.size(), &n) == 1);
        }
    }
    // Reads `count` frames one after another and returns their tokens.
    std::vector<std::uint64_t> read_frames(std::size_t count) {
        std::vector<std::uint64_t> got;
        bool failed = false;
        std::function<void()> next = [&]() {
            async_read_frame(server, [&](error_code ec, Frame f, std::string why) {
                if (ec) {
                    failed = true;
                    FAIL(why);
                    return;
                }
                got.push_back(from_frame<Ping>(f).token);
                if (got.size() < count) next();
            });
        };
        next();
        run_until(io, [&] { return failed || got.size() == count; });
        return got;
    }
};

Bytes cat(const Bytes& a, const Bytes& b) {
    Bytes r = a;
    r.insert(r.end(), b.begin(), b.end());
    return r;
}
Bytes cut(const Bytes& b, std::size_t from, std::size_t to) { return Bytes(b.begin() + from, b.begin() + to); }
}  // namespace

TEST_CASE("two frames in one TLS record read whole, the second from the SSL object without a wait") {
    Session s;
    s.write({cat(ping(1), ping(2))});
    pass_edge(s.io);
    CHECK(s.read_frames(2) == std::vector<std::uint64_t>{1, 2});
}

TEST_CASE("a frame split across TLS records, in its header and between header and payload, reads whole") {
    Session s;
    auto a = ping(3), b = ping(4);
    s.write({cut(a, 0, 3), cut(a, 3, a.size()), cut(b, 0, kHeaderSize), cut(b, kHeaderSize, b.size())});
    pass_edge(s.io);
    CHECK(s.read_frames(2) == std::vector<std::uint64_t>{3, 4});
}

TEST_CASE("a read that starts after the socket's edge went by still completes, and after each idle wait too") {
    Session s;
    for (std::uint64_t t = 10; t < 14; ++t) {
        s.write({ping(t)});
        pass_edge(s.io);
        CHECK(s.read_frames(1) == std::vector<std::uint64_t>{t});
    }
}

TEST_CASE("a TLS record cut across TCP segments reads whole, a piece at a time with the reader waiting between") {
    Session s;
    // The client's records go to memory from here on, to be sent in pieces by hand.
    BIO* mem = BIO_new(BIO_s_mem());
    REQUIRE(mem != nullptr);
    SSL_set0_wbio(s.client->ssl(), mem);
    s.write({cat(ping(20), ping(21)), ping(22)});
    Bytes wire(static_cast<std::size_t>(BIO_pending(mem)));
    REQUIRE(BIO_read(mem, wire.data(), static_cast<int>(wire.size())) == static_cast<int>(wire.size()));
    std::vector<std::uint64_t> got;
    std::function<void()> next = [&]() {
        async_read_frame(s.server, [&](error_code ec, Frame f, std::string) {
            REQUIRE_FALSE(ec);
            got.push_back(from_frame<Ping>(f).token);
            if (got.size() < 3) next();
        });
    };
    next();
    int fd = s.client->socket().native_handle();
    // Cut inside the first record's 5-byte header, inside its body, and at the boundary between records.
    std::vector<std::size_t> cuts = {2, 4, 9, 30, wire.size() / 2, wire.size() - 1, wire.size()};
    std::size_t at = 0;
    for (auto c : cuts) {
        REQUIRE(::send(fd, wire.data() + at, c - at, 0) == static_cast<ssize_t>(c - at));
        at = c;
        pass_edge(s.io);
    }
    run_until(s.io, [&] { return got.size() == 3; });
    CHECK(got == std::vector<std::uint64_t>{20, 21, 22});
}
