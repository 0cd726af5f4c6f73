// tn-route-agents: the load generator of bench/relay/scale.py and tests/relay/test_relay_scale.py
// (bench/relay/SCALE.md). Not installed. N simulated vnets from one process against a real tn-route
// (swarm.hpp), then M idle proxied connections through the route's remote_ports: the generator holds
// both ends, the remote_port client and the serving vnet's link. One JSON line of counters on stdout
// every --stats-ms.
#include <sys/resource.h>

#include <csignal>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "base/error.hpp"
#include "relay/io_tls.hpp"
#include "swarm.hpp"

namespace {

using namespace tn;
using namespace tn::bench;

struct Args {
    std::string route, fingerprint, token_file;
    std::size_t vnets = 10, per_group = 50, serving = 1, conns = 0, window = 128, sources = 250;
    std::uint16_t remote_port = 0;
    unsigned stats_ms = 1000;
    bool plain = false, open_at_once = false;
};

// Idle proxied connections: M remote_port clients spread over the serving vnets' ports and the
// source addresses, at most `window` waiting for their link at once (the route's pending budgets
// are per serve and per source: a real crowd arrives from many addresses, not all at once).
class Clients {
public:
    Clients(Swarm& sw, const Args& a) : sw_(sw), a_(a) {}
    // At most 32 waiting per serve: the route refuses a serve's clients over its pending budget (64).
    void fill() {
        auto window = std::min(a_.window, 32 * a_.serving);
        while (started_ < a_.conns && started_ - done() < window) open(started_++);
    }
    bool finished() const { return started_ == a_.conns && done() == a_.conns; }

private:
    std::uint64_t done() const { return sw_.n.links_ok + sw_.n.links_failed + sw_.n.clients_failed + sw_.n.clients_closed; }
    void open(std::size_t i) {
        auto port = static_cast<std::uint16_t>(a_.remote_port + i % a_.serving);
        auto sock = std::make_shared<tcp::socket>(sw_.socket_from(i + 7));
        sock->async_connect(tcp::endpoint(sw_.route.address(), port), [this, sock](relay::error_code ec) {
            if (ec) return void(++sw_.n.clients_failed);
            ++sw_.n.clients;
            sw_.clients.push_back(sock);
            // The route sends a client nothing before its first byte: readable means closed (refused
            // over a budget, or its link ended). Counted, so the connections held are an honest count.
            sock->async_wait(tcp::socket::wait_read, [this, sock](relay::error_code) {
                ++sw_.n.clients_closed;
                relay::error_code ec2;
                sock->close(ec2);
            });
        });
    }
    Swarm& sw_;
    const Args& a_;
    std::size_t started_ = 0;
};

std::uint32_t peak_since(const Counters& n, std::size_t& from) {
    std::uint32_t peak = 0;
    for (; from < n.slots.size(); ++from) peak = std::max(peak, n.slots[from]);
    return peak;
}

void print_stats(const Swarm& sw, std::size_t& slot_from) {
    const auto& n = sw.n;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - sw.start).count();
    std::printf("{\"ms\":%lld,\"connected\":%llu,\"registered\":%llu,\"attempts\":%llu,\"failures\":%llu,\"refused\":%llu,"
                "\"heartbeats\":%llu,\"heartbeat_moves\":%llu,\"links_ok\":%llu,\"links_failed\":%llu,\"clients\":%llu,"
                "\"clients_failed\":%llu,\"clients_closed\":%llu,"
                "\"peak_attempts_100ms\":%u}\n",
                static_cast<long long>(ms), static_cast<unsigned long long>(n.connected), static_cast<unsigned long long>(n.registered),
                static_cast<unsigned long long>(n.attempts), static_cast<unsigned long long>(n.failures),
                static_cast<unsigned long long>(n.refused), static_cast<unsigned long long>(n.heartbeats),
                static_cast<unsigned long long>(n.heartbeat_moves), static_cast<unsigned long long>(n.links_ok),
                static_cast<unsigned long long>(n.links_failed),
                static_cast<unsigned long long>(n.clients), static_cast<unsigned long long>(n.clients_failed),
                static_cast<unsigned long long>(n.clients_closed), peak_since(n, slot_from));
    std::fflush(stdout);
}

void raise_fd_limit() {
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &r);
    }
}

tcp::endpoint parse_route(const std::string& s) {
    auto colon = s.rfind(':');
    relay::error_code ec;
    auto addr = colon == std::string::npos ? asio::ip::address() : asio::ip::make_address(s.substr(0, colon), ec);
    if (colon == std::string::npos || ec) throw Error(ExitCode::usage, "--route: expected IP:PORT, got " + s);
    return {addr, static_cast<std::uint16_t>(std::stoul(s.substr(colon + 1)))};
}

int run(const Args& a) {
    raise_fd_limit();
    std::signal(SIGPIPE, SIG_IGN);  // a write to a connection the route closed is an error, not our end
    asio::io_context io;
    Swarm sw(io, parse_route(a.route));
    std::ifstream tf(a.token_file);
    if (!std::getline(tf, sw.token) || sw.token.empty()) throw Error(ExitCode::io, "cannot read a token from " + a.token_file);
    if (!a.plain) sw.tls.emplace(relay::client_context());
    sw.fingerprint = relay::normalize_fingerprint(a.fingerprint);
    for (std::size_t i = 0; i < std::max<std::size_t>(1, a.sources); ++i)
        sw.sources.push_back(asio::ip::make_address_v4(static_cast<std::uint32_t>(0x7f000002 + i % 250)));
    std::vector<std::shared_ptr<SimVnet>> vnets;
    for (std::size_t i = 0; i < a.vnets; ++i) {
        auto port = i < a.serving && a.remote_port ? static_cast<std::uint16_t>(a.remote_port + i) : std::uint16_t{0};
        vnets.push_back(std::make_shared<SimVnet>(sw, i, "s" + std::to_string(i / a.per_group), port));
        vnets.back()->start();
    }
    Clients clients(sw, a);
    bool opening = false;
    std::size_t slot_from = 0;
    asio::steady_timer stats(io), fill(io);
    std::function<void()> tick = [&]() {
        print_stats(sw, slot_from);
        stats.expires_after(std::chrono::milliseconds(a.stats_ms));
        stats.async_wait([&](relay::error_code ec) { if (!ec) tick(); });
    };
    // The clients start on SIGUSR1 (the driver measures the vnets alone first), or once every vnet
    // is registered with --open-at-once; they refill every 5 ms.
    asio::signal_set usr1(io, SIGUSR1);
    usr1.async_wait([&](relay::error_code ec, int) { opening = opening || !ec; });
    std::function<void()> feed = [&]() {
        if (!opening && a.open_at_once && sw.n.registered == a.vnets) opening = true;
        if (opening) clients.fill();
        fill.expires_after(std::chrono::milliseconds(5));
        fill.async_wait([&](relay::error_code ec) { if (!ec) feed(); });
    };
    tick();
    feed();
    io.run();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    CLI::App app{"tn-route-agents: N simulated vnets and M idle proxied connections against a real tn-route"};
    app.add_option("--route", a.route, "The route's IP:PORT")->required();
    app.add_option("--fingerprint", a.fingerprint, "The route certificate's fingerprint (TLS)");
    app.add_option("--token-file", a.token_file, "A file whose first line is every group's token")->required();
    app.add_option("--vnets", a.vnets, "Simulated vnets");
    app.add_option("--per-group", a.per_group, "Vnets per group (groups s0, s1, ...; the route allows 64 per group)");
    app.add_option("--serving", a.serving, "How many of them serve a remote_port (vnet i takes --remote-port + i)");
    app.add_option("--remote-port", a.remote_port, "The first remote_port (0: no remote_ports, no proxied connections)");
    app.add_option("--conns", a.conns, "Idle proxied connections to open once every vnet is registered");
    app.add_option("--window", a.window, "Connections waiting for their link at once");
    app.add_option("--sources", a.sources, "Source addresses 127.0.0.2 and up (at most 250)");
    app.add_option("--stats-ms", a.stats_ms, "Interval of the JSON counter lines");
    app.add_flag("--plain", a.plain, "The route runs tls = false");
    app.add_flag("--open-at-once", a.open_at_once, "Open the connections once every vnet is registered, not on SIGUSR1");
    CLI11_PARSE(app, argc, argv);
    if (a.per_group == 0 || a.serving == 0 || a.stats_ms == 0) {
        std::cerr << "tn-route-agents: --per-group, --serving and --stats-ms must be positive\n";
        return 64;
    }
    try {
        return run(a);
    } catch (const Error& e) {
        std::cerr << "tn-route-agents: " << e.what() << "\n";
        return static_cast<int>(e.code());
    }
}
