// Both tn-tun cores' on_datagram (lib/tun/server_core, client_core) after a real handshake, fed a
// script of hostile events: raw datagrams to either side (from a peer's address or a stranger's),
// bit-flipped copies of genuine datagrams (valid receiver index, forged contents), inner packets a
// connected peer encrypts for real (IPv4 and IPv6, spoofed sources, client-to-client routing), and
// time passing. Peer one's sessions are AES-256-GCM, peer two's ChaCha20-Poly1305.
// Every datagram lands in a heap buffer of exactly its length so ASan sees any overrun.
#include <arpa/inet.h>
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "tun/client_core.hpp"
#include "tun/server_core.hpp"

using namespace tn::tun;

namespace {

KeyPair keypair(std::uint8_t start) {
    KeyPair kp;
    for (std::size_t i = 0; i < kp.priv.size(); ++i) kp.priv[i] = static_cast<std::uint8_t>(start + i);
    kp.pub = public_key(kp.priv);
    return kp;
}

Endpoint endpoint(std::uint32_t ip, std::uint16_t port) {
    Endpoint e;
    auto* a = reinterpret_cast<sockaddr_in*>(&e.sa);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    a->sin_addr.s_addr = htonl(ip);
    e.len = sizeof(sockaddr_in);
    return e;
}

struct World {
    static Key psk(std::uint8_t b) {
        Key k;
        k.fill(b);
        return k;
    }
    KeyPair server_key = keypair(0x40), k1 = keypair(0x01), k2 = keypair(0x21);
    ServerCore server{settings()};
    // Peer one offers AES-256-GCM and the server chooses it (PROTOCOL.tun.md §4, revision 5); peer two
    // does not: both suites' handshakes and transport get fuzzed.
    ClientCore c1{ClientSettings{k1, server_key.pub, seconds(1), Key{}, aes_gcm_available()}};
    ClientCore c2{ClientSettings{k2, server_key.pub, seconds(0), psk(0x60)}};
    TimePoint now = TimePoint() + std::chrono::hours(1);
    std::chrono::system_clock::time_point wall = std::chrono::system_clock::time_point() + std::chrono::hours(500000);
    Endpoint e1 = endpoint(0xc0000201, 40001), e2 = endpoint(0xc0000202, 40002), stranger = endpoint(0xcb007101, 9);
    std::vector<std::uint8_t> scratch = std::vector<std::uint8_t>(max_datagram_len + 64);
    std::vector<std::uint8_t> last;  // the last genuine datagram either side sent

    ServerSettings settings() const {
        ServerSettings s;
        s.key = server_key;
        s.subnet = parse_cidr("10.99.0.0/24");
        s.mtu = 1400;
        s.dns = {parse_ipv4("10.99.0.1")};
        s.routes = {parse_cidr("10.88.0.0/16")};
        s.subnet6 = parse_cidr6("fd00:99::/64");  // IPv6 inside the tunnel: its routing and source check too
        s.routes6 = {parse_cidr6("fd00:88::/48")};
        PeerConfig one, two;
        one.name = "one";
        one.public_key = k1.pub;
        two.name = "two";
        two.public_key = k2.pub;
        two.address = parse_ipv4("10.99.0.9");
        two.psk = psk(0x60);  // the pre-shared key path gets fuzzed too
        s.peers = {one, two};
        s.aes = aes_gcm_available();  // libsodium's AES-256-GCM needs AES-NI
        return s;
    }

    Actions to_server(std::span<const std::uint8_t> d, const Endpoint& from) {
        std::vector<std::uint8_t> b(d.begin(), d.end());
        Actions a = server.on_datagram(b.data(), b.size(), from, now, wall, scratch.data());
        if (!a.send.empty()) last.assign(a.send.begin(), a.send.end());
        return a;
    }
    // What a client sent back, copied: its actions point into buffers that end with this call.
    std::vector<std::uint8_t> to_client(ClientCore& c, std::span<const std::uint8_t> d) {
        std::vector<std::uint8_t> b(d.begin(), d.end());
        std::vector<std::uint8_t> cs(max_datagram_len + 64);
        ClientActions a = c.on_datagram(b.data(), b.size(), now, cs.data());
        if (a.send.size() > max_datagram_len || a.to_tun.size() > max_inner_len) __builtin_trap();
        std::vector<std::uint8_t> sent(a.send.begin(), a.send.end());
        if (!sent.empty()) last = sent;
        return sent;
    }
    // A client's datagram to the server and the exchange that follows, until quiet.
    void exchange(ClientCore& c, const Endpoint& from, std::vector<std::uint8_t> out) {
        for (int round = 0; round < 4 && !out.empty(); ++round) {
            Actions a = to_server(out, from);
            out.clear();
            if (a.send.empty()) return;
            std::vector<std::uint8_t> reply(a.send.begin(), a.send.end());
            out = to_client(c, reply);
        }
    }
    void tick(ClientCore& c, const Endpoint& from) {
        ClientActions a = c.tick(now, wall, scratch.data());
        std::vector<std::uint8_t> out(a.send.begin(), a.send.end());
        server.tick(now);
        (void)server.next_deadline();
        (void)c.next_deadline();
        exchange(c, from, out);
    }
    // An inner packet the client encrypts for real: the server sees a genuine, authenticated datagram.
    void client_sends(ClientCore& c, const Endpoint& from, std::span<const std::uint8_t> inner) {
        std::vector<std::uint8_t> b(transport_header_len + inner.size() + 16);
        std::copy(inner.begin(), inner.end(), b.begin() + transport_header_len);
        ClientActions a = c.on_tun(b.data(), inner.size(), now);
        if (a.send.empty()) return;
        std::vector<std::uint8_t> d(a.send.begin(), a.send.end());
        last = d;
        Actions sa = to_server(d, from);
        if (!sa.send.empty()) {
            std::vector<std::uint8_t> fwd(sa.send.begin(), sa.send.end());
            (void)to_client(sa.send_to == e2 ? c2 : c1, fwd);
        }
    }
    void server_sends(std::span<const std::uint8_t> inner) {
        std::vector<std::uint8_t> b(transport_header_len + inner.size() + 16);
        std::copy(inner.begin(), inner.end(), b.begin() + transport_header_len);
        Actions a = server.on_tun(b.data(), inner.size(), now);
        if (a.send.empty()) return;
        std::vector<std::uint8_t> d(a.send.begin(), a.send.end());
        last = d;
        (void)to_client(a.send_to == e2 ? c2 : c1, d);
    }
};

// An inner IPv4 packet: fuzz bytes, with the version nibble and length kept plausible half the time.
std::vector<std::uint8_t> inner_packet(FuzzedDataProvider& in, const World& w) {
    auto p = in.ConsumeBytes<std::uint8_t>(in.ConsumeIntegralInRange<std::size_t>(0, 1500));
    if (p.size() >= 40 && in.ConsumeBool() && (p[1] & 1)) {  // IPv6 from peer one's own address
        p[0] = 0x60;
        p[4] = static_cast<std::uint8_t>((p.size() - 40) >> 8);
        p[5] = static_cast<std::uint8_t>(p.size() - 40);
        if (w.c1.push()) std::copy(w.c1.push()->address6.begin(), w.c1.push()->address6.end(), p.begin() + 8);
    } else if (p.size() >= 20 && in.ConsumeBool()) {
        p[0] = 0x45;
        p[2] = static_cast<std::uint8_t>(p.size() >> 8);
        p[3] = static_cast<std::uint8_t>(p.size());
        if (w.c1.push()) put_u32(&p[12], w.c1.push()->address);
    }
    return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    World w;
    if (in.ConsumeBool()) w.tick(w.c1, w.e1);  // most scripts start with peer one connected
    if (in.ConsumeBool()) w.tick(w.c2, w.e2);
    for (int step = 0; step < 32 && in.remaining_bytes() > 0; ++step) {
        switch (in.ConsumeIntegralInRange<int>(0, 7)) {
            case 0: {  // anything, from anywhere, to the server
                auto d = in.ConsumeBytes<std::uint8_t>(in.ConsumeIntegralInRange<std::size_t>(0, 2048));
                const Endpoint& from = in.ConsumeBool() ? w.stranger : w.e1;
                (void)w.to_server(d, from);
                break;
            }
            case 1: {  // anything to a client (an off-path attacker guessing its port)
                auto d = in.ConsumeBytes<std::uint8_t>(in.ConsumeIntegralInRange<std::size_t>(0, 2048));
                (void)w.to_client(w.c1, d);
                break;
            }
            case 2: {  // a genuine datagram with bits flipped, to the server or to client one
                if (w.last.empty()) break;
                auto d = w.last;
                auto mask = in.ConsumeBytes<std::uint8_t>(d.size());
                for (std::size_t i = 0; i < mask.size(); ++i) d[i] ^= mask[i];
                if (in.ConsumeBool()) (void)w.to_server(d, in.ConsumeBool() ? w.stranger : w.e1);
                else (void)w.to_client(w.c1, d);
                break;
            }
            case 3: {  // a genuine datagram replayed, truncated or extended
                if (w.last.empty()) break;
                auto d = w.last;
                d.resize(in.ConsumeIntegralInRange<std::size_t>(0, d.size() + 32));
                (void)w.to_server(d, w.e1);
                break;
            }
            case 4: {
                auto p = inner_packet(in, w);
                w.client_sends(in.ConsumeBool() ? w.c1 : w.c2, in.ConsumeBool() ? w.e1 : w.stranger, p);
                break;
            }
            case 5: {
                auto p = inner_packet(in, w);
                if (p.size() >= 40 && p[0] == 0x60 && w.c2.push())
                    std::copy(w.c2.push()->address6.begin(), w.c2.push()->address6.end(), p.begin() + 24);
                else if (p.size() >= 20 && w.c2.push()) put_u32(&p[16], w.c2.push()->address);
                w.server_sends(p);
                break;
            }
            case 6:  // time passes: keepalives, rekeys, expiry
                w.now += std::chrono::seconds(in.ConsumeIntegralInRange<int>(0, 200));
                w.wall += std::chrono::seconds(1);
                w.tick(in.ConsumeBool() ? w.c1 : w.c2, in.ConsumeBool() ? w.e1 : w.e2);
                break;
            case 7:  // a fresh initiation from peer one, with bits flipped
            {
                std::vector<std::uint8_t> s(max_datagram_len + 64);
                w.now += rekey_timeout;
                ClientActions a = w.c1.tick(w.now, w.wall, s.data());
                std::vector<std::uint8_t> d(a.send.begin(), a.send.end());
                auto mask = in.ConsumeBytes<std::uint8_t>(d.size());
                for (std::size_t i = 0; i < mask.size(); ++i) d[i] ^= mask[i];
                (void)w.to_server(d, w.e1);
                break;
            }
        }
    }
    return 0;
}
