// Helpers shared by the tn-tun unit tests: fixed keys, IPv4 packets, endpoints, a client/server pair.
#pragma once

#include <arpa/inet.h>

#include <cstring>
#include <vector>

#include "tun/client_core.hpp"
#include "tun/server_core.hpp"

namespace tn::tun::test {

inline Key fill_key(std::uint8_t start) {
    Key k;
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(start + i);
    return k;
}
inline KeyPair fixed_keypair(std::uint8_t start) {
    KeyPair kp;
    kp.priv = fill_key(start);
    kp.pub = public_key(kp.priv);
    return kp;
}

inline Endpoint endpoint(const char* ip, std::uint16_t port) {
    Endpoint e;
    auto* a = reinterpret_cast<sockaddr_in*>(&e.sa);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, ip, &a->sin_addr);
    e.len = sizeof(sockaddr_in);
    return e;
}

// A minimal IPv4 packet of `total` bytes from src to dst (no checksum: nothing here checks it).
inline std::vector<std::uint8_t> ipv4_packet(std::uint32_t src, std::uint32_t dst, std::size_t total = 60) {
    std::vector<std::uint8_t> p(total, 0xab);
    p[0] = 0x45;
    p[1] = 0;
    p[2] = static_cast<std::uint8_t>(total >> 8);
    p[3] = static_cast<std::uint8_t>(total);
    put_u32(&p[12], src);
    put_u32(&p[16], dst);
    return p;
}

// A minimal IPv6 packet of `total` bytes (40 of header) from src to dst.
inline std::vector<std::uint8_t> ipv6_packet(const Ip6& src, const Ip6& dst, std::size_t total = 80) {
    std::vector<std::uint8_t> p(total, 0xcd);
    p[0] = 0x60;
    p[1] = p[2] = p[3] = 0;
    p[4] = static_cast<std::uint8_t>((total - 40) >> 8);
    p[5] = static_cast<std::uint8_t>(total - 40);
    p[6] = 17;
    p[7] = 64;
    std::memcpy(&p[8], src.data(), 16);
    std::memcpy(&p[24], dst.data(), 16);
    return p;
}

// A datagram buffer big enough for anything the protocol allows.
struct Buf {
    std::vector<std::uint8_t> b = std::vector<std::uint8_t>(max_datagram_len + 64);
    std::uint8_t* data() { return b.data(); }
    std::size_t load(Bytes src) {
        std::memcpy(b.data(), src.data(), src.size());
        return src.size();
    }
    // Puts an inner packet where on_tun() expects it.
    std::size_t load_inner(const std::vector<std::uint8_t>& pkt) {
        std::memcpy(b.data() + transport_header_len, pkt.data(), pkt.size());
        return pkt.size();
    }
};

// A peer entry without site routes or overrides.
inline PeerConfig peer_config(std::string name, const Key& key, std::optional<std::uint32_t> address = std::nullopt) {
    PeerConfig p;
    p.name = std::move(name);
    p.public_key = key;
    p.address = address;
    return p;
}

// One server with two configured peers and clients for them, wired through plain function calls.
struct Net {
    KeyPair server_key = fixed_keypair(0x40);
    KeyPair k1 = fixed_keypair(0x01), k2 = fixed_keypair(0x21);
    ServerCore server;
    ClientCore c1, c2;
    TimePoint now = TimePoint() + std::chrono::hours(1);
    std::chrono::system_clock::time_point wall = std::chrono::system_clock::time_point() + std::chrono::hours(500000);
    Endpoint e1 = endpoint("192.0.2.1", 40001), e2 = endpoint("192.0.2.2", 40002);
    Buf scratch, buf;

    static ServerSettings settings(const KeyPair& sk, const KeyPair& k1, const KeyPair& k2) {
        ServerSettings s;
        s.key = sk;
        s.subnet = parse_cidr("10.99.0.0/24");
        s.mtu = 1400;
        s.dns = {parse_ipv4("10.99.0.1")};
        s.routes = {parse_cidr("10.88.0.0/16")};
        s.peers = {peer_config("one", k1.pub), peer_config("two", k2.pub)};
        return s;
    }
    Net() : Net(settings(fixed_keypair(0x40), fixed_keypair(0x01), fixed_keypair(0x21))) {}
    // With settings() changed by the test (the keys must stay those of fixed_keypair above).
    explicit Net(ServerSettings s)
        : server(std::move(s)),
          c1(ClientSettings{k1, server_key.pub, seconds(1)}),
          c2(ClientSettings{k2, server_key.pub, seconds(0)}) {}

    // Delivers what the client sent to the server and everything that follows until quiet.
    void client_to_server(ClientCore& c, const Endpoint& from, Bytes sent) {
        std::vector<std::uint8_t> pending(sent.begin(), sent.end());
        while (!pending.empty()) {
            std::size_t n = buf.load(Bytes(pending.data(), pending.size()));
            pending.clear();
            Actions a = server.on_datagram(buf.data(), n, from, now, wall, scratch.data());
            if (a.send.empty()) return;
            std::vector<std::uint8_t> reply(a.send.begin(), a.send.end());
            Buf cb, cs;
            std::size_t m = cb.load(Bytes(reply.data(), reply.size()));
            ClientActions ca = c.on_datagram(cb.data(), m, now, cs.data());
            if (!ca.send.empty()) pending.assign(ca.send.begin(), ca.send.end());
        }
    }
    void connect(ClientCore& c, const Endpoint& from) {
        Buf s;
        ClientActions a = c.tick(now, wall, s.data());
        client_to_server(c, from, a.send);
    }
};

}  // namespace tn::tun::test
