// tn-tun-peers: the load generator of bench/tun/scale.py and tests/tun/test_tun_scale.py
// (bench/tun/SCALE.md). Not installed.
//   keys N              N fresh key pairs, "private public" per line (base64)
//   run  ...            N simulated clients (one per private key in --keys) against a real server:
//                       handshakes, then steady echoes, then a flood; one JSON line per phase
//   core N              the server core's handshake cost with N peers, in this process, no I/O
// --cipher (run, core): auto (default, as `tn-tun client` with cipher = "auto": offer AES-256-GCM
// where this CPU has AES-NI), aes (offer it; an error without AES-NI) or chacha (never offer it).
#include <arpa/inet.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "base/error.hpp"
#include "swarm.hpp"
#include "tun/crypto.hpp"
#include "tun/server_core.hpp"

namespace {

using namespace tn;

struct RunArgs {
    std::string server, server_key, keys, bind;
    std::size_t size = 1000;
    double connect_timeout = 60, steady_rate = 10, steady_seconds = 5, flood_seconds = 5;
    unsigned window = 64, addresses = 1;
    bool until_replied = false;
    bool offer_aes = false;
};

// --cipher, resolved as tn-tun's `cipher` is (tools/tn-tun/options.cpp): whether the peers offer AES.
bool offer_aes(const std::string& cipher) {
    if (cipher == "auto") return tun::aes_gcm_available();
    if (cipher == "aes" && !tun::aes_gcm_available())
        throw Error(ExitCode::usage, "--cipher aes: AES-256-GCM needs AES-NI, which this CPU does not have");
    return cipher == "aes";
}

sockaddr_in parse_server(const std::string& s) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    auto colon = s.rfind(':');
    if (colon == std::string::npos || ::inet_pton(AF_INET, s.substr(0, colon).c_str(), &a.sin_addr) != 1)
        throw Error(ExitCode::usage, "--server: expected IPv4:PORT, got " + s);
    a.sin_port = htons(static_cast<std::uint16_t>(std::stoul(s.substr(colon + 1))));
    return a;
}

std::vector<tun::Key> read_keys(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw Error(ExitCode::io, "cannot read " + path);
    std::vector<tun::Key> keys;
    for (std::string line; std::getline(in, line);) {
        std::istringstream words(line);
        std::string priv;
        if (words >> priv) keys.push_back(tun::key_from_base64(priv));
    }
    if (keys.empty()) throw Error(ExitCode::data, path + ": no keys");
    return keys;
}

// One socket per peer: lift the descriptor limit to its hard ceiling.
void raise_fd_limit() {
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &r);
    }
}

void print_phase(const char* name, const bench::PhaseResult& r) {
    std::printf("{\"phase\":\"%s\",\"seconds\":%.3f,\"sent\":%llu,\"replies\":%llu,\"reply_bytes\":%llu,\"lost\":%llu,"
                "\"send_failed\":%llu,\"peers_replied\":%zu,\"rtt_p50_ms\":%.3f,\"rtt_p99_ms\":%.3f}\n",
                name, r.seconds, (unsigned long long)r.sent, (unsigned long long)r.replies,
                (unsigned long long)r.reply_bytes, (unsigned long long)r.lost, (unsigned long long)r.send_failed,
                r.peers_replied, r.rtt_p50_ms, r.rtt_p99_ms);
    std::fflush(stdout);
}

int run(const RunArgs& a) {
    raise_fd_limit();
    bench::Swarm swarm(read_keys(a.keys), tun::key_from_base64(a.server_key), parse_server(a.server), a.bind, a.addresses,
                       a.size, a.offer_aes);
    auto c = swarm.connect(a.connect_timeout);
    std::printf("{\"phase\":\"connect\",\"peers\":%zu,\"connected\":%zu,\"seconds\":%.3f,\"initiations\":%llu,"
                "\"cookies\":%llu,\"offer_aes\":%s,\"aes_sessions\":%zu}\n",
                swarm.size(), c.connected, c.seconds, (unsigned long long)c.initiations, (unsigned long long)c.cookies,
                a.offer_aes ? "true" : "false", c.aes);
    std::fflush(stdout);
    if (c.connected != swarm.size()) return 69;  // EX_UNAVAILABLE: not every peer got through
    if (a.steady_seconds > 0) print_phase("steady", swarm.steady(a.steady_rate, a.steady_seconds, a.until_replied));
    if (a.flood_seconds > 0) print_phase("flood", swarm.flood(a.window, a.flood_seconds));
    return 0;
}

int keys(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        auto kp = tun::generate_keypair();
        std::printf("%s %s\n", tun::key_to_base64(kp.priv).c_str(), tun::key_to_base64(kp.pub).c_str());
    }
    return 0;
}

// CPU time of this thread: on a shared machine wall time would count the other processes' turns too.
double thread_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

// The smallest IPv4 subnet with room for the server and n peers.
tun::Route subnet_for(std::size_t n) {
    std::uint8_t prefix = 30;
    while (prefix > 8 && (std::size_t(1) << (32 - prefix)) < n + 3) --prefix;
    return tun::Route{0x0a000000, prefix};
}

// The server side of full handshakes (CPU time of the calls into ServerCore) (initiation -> response, confirming keepalive -> push) with n
// peers configured and the rate limits lifted: what one core can do, without the kernel's share.
int core(std::size_t n, unsigned rounds, bool aes) {
    tun::ServerSettings s;
    s.key = tun::generate_keypair();
    s.aes = tun::aes_gcm_available();  // a server with cipher = "auto"
    s.subnet = subnet_for(n);
    s.handshakes_per_second = s.handshake_burst = s.max_handshakes_per_second = s.max_handshake_burst = 1e12;
    std::vector<tun::ClientCore> clients;
    clients.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        tun::ClientSettings c;
        c.key = tun::generate_keypair();
        c.server_public = s.key.pub;
        c.offer_aes = aes;
        tun::PeerConfig pc;
        pc.name = "p" + std::to_string(i);
        pc.public_key = c.key.pub;
        s.peers.push_back(pc);
        clients.emplace_back(c);
    }
    tun::ServerCore server(s);
    std::vector<std::uint8_t> buf(tun::max_datagram_len + 64), scratch(buf.size()), sscratch(buf.size());
    tun::Endpoint from;
    auto* sin = reinterpret_cast<sockaddr_in*>(&from.sa);
    sin->sin_family = AF_INET;
    from.len = sizeof(sockaddr_in);
    double server_s = 0;
    std::size_t done = 0;
    auto now = tun::Clock::now();
    auto wall = std::chrono::system_clock::now();
    auto server_turn = [&](tun::Bytes d) {
        std::copy(d.begin(), d.end(), buf.begin());
        double t0 = thread_cpu_seconds();
        auto r = server.on_datagram(buf.data(), d.size(), from, now, wall, sscratch.data());
        server_s += thread_cpu_seconds() - t0;
        return r.send;
    };
    for (unsigned round = 0; round < rounds; ++round, now += tun::rekey_after_time + tun::seconds(1), wall += std::chrono::seconds(200)) {
        for (std::size_t i = 0; i < n; ++i) {
            sin->sin_port = htons(static_cast<std::uint16_t>(1024 + i % 60000));
            auto init = clients[i].tick(now, wall, scratch.data()).send;
            auto resp = server_turn(init);
            std::copy(resp.begin(), resp.end(), buf.begin());
            auto ka = clients[i].on_datagram(buf.data(), resp.size(), now, scratch.data()).send;
            auto push = server_turn(ka);
            std::copy(push.begin(), push.end(), buf.begin());
            clients[i].on_datagram(buf.data(), push.size(), now, scratch.data());
            if (clients[i].connected()) ++done;
        }
    }
    std::printf("{\"phase\":\"core\",\"peers\":%zu,\"handshakes\":%zu,\"server_cpu_us_per_handshake\":%.2f,"
                "\"handshakes_per_second\":%.0f}\n",
                n, done, server_s / double(done ? done : 1) * 1e6, double(done) / server_s);
    return done == std::size_t(n) * rounds ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"tn-tun-peers: N simulated tn-tun clients from one process (bench/tun/SCALE.md)"};
    app.require_subcommand(1);
    std::size_t n = 0;
    unsigned rounds = 3;
    std::string cipher = "auto";
    auto cipher_option = [&](CLI::App* sub) {
        sub->add_option("--cipher", cipher, "auto (AES-256-GCM where this CPU has AES-NI, as a real client), aes or chacha")
            ->check(CLI::IsMember({"auto", "aes", "chacha"}));
    };
    auto* k = app.add_subcommand("keys", "print N key pairs, 'private public' per line");
    k->add_option("n", n, "how many")->required();
    auto* c = app.add_subcommand("core", "server core handshake cost with N peers, no I/O");
    c->add_option("n", n, "how many peers")->required();
    c->add_option("--rounds", rounds, "handshakes per peer");
    cipher_option(c);
    RunArgs a;
    auto* r = app.add_subcommand("run", "simulated clients against a running tn-tun server");
    r->add_option("--server", a.server, "server IPv4:PORT")->required();
    r->add_option("--server-key", a.server_key, "the server's public key (base64)")->required();
    r->add_option("--keys", a.keys, "file of private keys, one per line (first word); one peer each")->required();
    r->add_option("--bind", a.bind, "local IPv4 address every peer's socket binds")->required();
    r->add_option("--addresses", a.addresses, "peers bind --bind and the next addresses after it, this many in turn");
    r->add_option("--size", a.size, "inner packet size in bytes (ICMP echo, at most 1400)");
    r->add_option("--connect-timeout", a.connect_timeout, "seconds for every peer to connect");
    r->add_option("--rate", a.steady_rate, "steady phase: echoes per second per peer");
    r->add_option("--steady-seconds", a.steady_seconds, "steady phase length (0: none)");
    r->add_flag("--until-replied", a.until_replied, "end the steady phase once every peer had a reply");
    r->add_option("--window", a.window, "flood phase: echoes in flight in total");
    r->add_option("--flood-seconds", a.flood_seconds, "flood phase length (0: none)");
    cipher_option(r);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 64;
    }
    try {
        if (*k) return keys(n);
        if (*c) return core(n, rounds, offer_aes(cipher));
        a.offer_aes = offer_aes(cipher);
        return run(a);
    } catch (const tn::Error& e) {
        std::fprintf(stderr, "tn-tun-peers: %s\n", e.what());
        return static_cast<int>(e.code());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tn-tun-peers: %s\n", e.what());  // a bad key in --keys, --server's port
        return 65;
    }
}
