// Test helpers for the relay's I/O units: a connected loopback TCP pair, a fixed link key and a temp dir.
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <system_error>

#include "relay/io_stream.hpp"
#include "relay/seal.hpp"

namespace tn::relay::test {

struct Pair {
    tcp::socket a, b;  // a: the connecting end, b: the accepted one
};

inline Pair connected(asio::io_context& io) {
    tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket c(io), s(io);
    c.connect(acc.local_endpoint());
    acc.accept(s);
    c.set_option(tcp::no_delay(true));
    s.set_option(tcp::no_delay(true));
    return {std::move(c), std::move(s)};
}

inline LinkKey key_of(std::uint8_t v) {
    LinkKey k{};
    k.fill(v);
    return k;
}

// A fresh directory in /tmp, removed with everything in it at the end of the scope. /tmp, not $TMPDIR:
// Unix socket paths made in it must stay within sun_path's 108 bytes.
struct TempDir {
    std::filesystem::path p;
    TempDir() {
        std::string t = "/tmp/tn-relay-test-XXXXXX";
        if (::mkdtemp(t.data()) == nullptr) throw std::system_error(errno, std::generic_category(), "mkdtemp");
        p = t;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(p, ec);
    }
};

}  // namespace tn::relay::test
