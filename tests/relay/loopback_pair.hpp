// Test helpers for the relay's I/O units: a connected loopback TCP pair and a fixed link key.
#pragma once

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

}  // namespace tn::relay::test
