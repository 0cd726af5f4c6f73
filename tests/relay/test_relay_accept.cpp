// Listener hardening: the setup gate's caps and eviction (pure), the log throttle, the shared accept
// loop surviving descriptor exhaustion on a real socket, and the private control socket rules.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "base/error.hpp"
#include "relay/io_accept.hpp"
#include "relay/io_control.hpp"
#include "relay/setup_gate.hpp"

#include "loopback_pair.hpp"

using namespace tn::relay;
using tn::relay::test::TempDir;
namespace fs = std::filesystem;

TEST_CASE("setup caps follow the descriptor limit") {
    auto c = SetupCaps::for_fd_limit(256);
    CHECK(c.global == 64);
    CHECK(c.per_source == 32);
    CHECK(SetupCaps::for_fd_limit(20).global == 16);
    CHECK(SetupCaps::for_fd_limit(20).per_source == 8);
    CHECK(SetupCaps::for_fd_limit(1 << 20).global == 1024);
    CHECK(SetupCaps::for_fd_limit(1 << 20).per_source == 512);
}

TEST_CASE("setup gate: per-source cap refuses, a full gate evicts the oldest of a bigger source") {
    SetupGate g({4, 3, std::chrono::seconds(1), std::chrono::seconds(1)});
    SetupGate::Clock::time_point t0{};
    std::vector<std::uint64_t> a;
    for (int i = 0; i < 3; ++i) {
        auto r = g.admit("10.0.0.1", t0);
        REQUIRE(r.id);
        CHECK_FALSE(r.evict);
        a.push_back(*r.id);
    }
    CHECK_FALSE(g.admit("10.0.0.1", t0).id);  // per-source cap
    auto b = g.admit("10.0.0.2", t0);
    REQUIRE(b.id);
    CHECK(g.size() == 4);
    // Full: a newcomer pushes out the oldest entry of the biggest other source.
    auto c = g.admit("10.0.0.3", t0);
    REQUIRE(c.id);
    REQUIRE(c.evict);
    CHECK(*c.evict == a[0]);
    CHECK(g.from("10.0.0.1") == 2);
    CHECK(g.size() == 4);
    g.done(*c.evict);  // an evicted entry reporting done is ignored
    CHECK(g.size() == 4);
    // Everyone holds as much as "10.0.0.1" would: it is refused rather than evict another.
    auto d = g.admit("10.0.0.1", t0);
    CHECK_FALSE(d.id);
    CHECK(g.victim() == a[1]);
    g.done(a[1]);
    g.done(a[2]);
    CHECK(g.from("10.0.0.1") == 0);
    CHECK(g.size() == 2);
}

TEST_CASE("setup gate: with one entry per source, a newcomer takes the oldest slot once it is slow") {
    SetupGate g({3, 2, std::chrono::seconds(5), std::chrono::seconds(1)});
    SetupGate::Clock::time_point t0{};
    auto first = g.admit("a", t0);
    g.admit("b", t0 + std::chrono::milliseconds(100));
    g.admit("c", t0 + std::chrono::milliseconds(200));
    // Nobody holds more than a share and nothing is slow yet: refused.
    CHECK_FALSE(g.admit("d", t0 + std::chrono::milliseconds(500)).id);
    auto late = g.admit("d", t0 + std::chrono::milliseconds(1000));
    REQUIRE(late.id);
    CHECK(late.evict == first.id);
    CHECK(g.size() == 3);
    // The slots just taken are young: a flood cannot churn them at once.
    CHECK_FALSE(g.admit("e", t0 + std::chrono::milliseconds(1050)).id);
}

TEST_CASE("log throttle lets one line through per interval and counts the rest") {
    LogThrottle t(std::chrono::seconds(5));
    SteadyClock::time_point t0{};
    CHECK(t.allow(t0) == std::uint64_t{0});
    CHECK_FALSE(t.allow(t0 + std::chrono::seconds(1)));
    CHECK_FALSE(t.allow(t0 + std::chrono::seconds(4)));
    CHECK(t.allow(t0 + std::chrono::seconds(5)) == std::uint64_t{2});
}

TEST_CASE("source key: IPv4 exact, IPv6 by /64, v4-mapped as IPv4") {
    CHECK(source_key(asio::ip::make_address("192.0.2.7")) == "192.0.2.7");
    CHECK(source_key(asio::ip::make_address("2001:db8:1:2:aaaa::1")) == "2001:db8:1:2::/64");
    CHECK(source_key(asio::ip::make_address("2001:db8:1:2:bbbb::9")) == "2001:db8:1:2::/64");
    CHECK(source_key(asio::ip::make_address("::ffff:192.0.2.7")) == "192.0.2.7");
}

TEST_CASE("accept loop: out of descriptors it backs off and sheds, then accepts again") {
    asio::io_context io;
    auto acc = std::make_shared<tcp::acceptor>(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    std::vector<tcp::socket> accepted;
    int warns = 0, exhausted = 0;
    auto loop = TcpAcceptLoop::start(acc,
                                     {[&](tcp::socket s) { accepted.push_back(std::move(s)); },
                                      [&](const std::string& m) {
                                          ++warns;
                                          CHECK(m.find("retrying in") != std::string::npos);
                                      },
                                      [&]() { ++exhausted; }},
                                     "test listener");
    // Three clients connect (the kernel completes their handshakes), then the descriptor table fills.
    std::vector<tcp::socket> clients;
    for (int i = 0; i < 3; ++i) {
        clients.emplace_back(io);
        clients.back().connect(acc->local_endpoint());
    }
    rlimit old{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
    int top = ::dup(0);
    REQUIRE(top >= 0);
    rlimit low = old;
    low.rlim_cur = static_cast<rlim_t>(top + 16);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
    std::vector<int> filler{top};
    for (int fd; (fd = ::dup(0)) >= 0;) filler.push_back(fd);
    for (int i = 0; i < 10000 && loop->resource_errors() < 3; ++i) io.run_one();
    CHECK(loop->resource_errors() >= 3);  // it kept trying on its timer: the loop did not end
    CHECK(exhausted == static_cast<int>(loop->resource_errors()));
    CHECK(accepted.empty());
    CHECK(warns >= 1);
    for (int fd : filler) ::close(fd);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &old) == 0);
    for (int i = 0; i < 10000 && accepted.size() < 3; ++i) io.run_one();
    CHECK(accepted.size() == 3);
    loop->stop();
    io.run();  // the stopped loop leaves nothing pending
}

TEST_CASE("accept loop: a stop ends it and no hook runs after") {
    asio::io_context io;
    auto acc = std::make_shared<tcp::acceptor>(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    int calls = 0;
    auto loop =
        TcpAcceptLoop::start(acc, {[&](tcp::socket) { ++calls; }, [&](const std::string&) { ++calls; }, nullptr}, "t");
    std::weak_ptr<TcpAcceptLoop> weak = loop;
    loop->stop();
    loop.reset();
    io.run();
    CHECK(calls == 0);
    CHECK(weak.expired());  // nothing keeps it alive once its accept is cancelled
}

TEST_CASE("control socket: a private directory is required and the socket is 0600 whatever the umask") {
    TempDir d;
    auto state = d.p / "state";
    ::setenv("TN_STATE_DIR", state.c_str(), 1);
    asio::io_context io;
    auto old = ::umask(0);
    auto acc = bind_control_socket(io, state / "x.sock");
    ::umask(old);
    struct stat st {};
    REQUIRE(::stat((state / "x.sock").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    REQUIRE(::stat(state.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    local_socket c(io), s(io);
    c.connect(acc->local_endpoint());
    acc->accept(s);
    CHECK(peer_is_owner(s));
    acc->close();

    ::chmod(state.c_str(), 0755);
    try {
        bind_control_socket(io, state / "y.sock");
        FAIL("a 0755 state directory was accepted");
    } catch (const tn::Error& e) {
        CHECK(e.code() == tn::ExitCode::config);
        CHECK(std::string(e.what()).find("chmod 700") != std::string::npos);
    }
    ::chmod(state.c_str(), 0700);
    if (::geteuid() == 0) {
        REQUIRE(::chown(state.c_str(), 65534, 65534) == 0);
        try {
            tn::require_private_dir(state);
            FAIL("a directory of another user was accepted");
        } catch (const tn::Error& e) {
            CHECK(e.code() == tn::ExitCode::config);
            CHECK(std::string(e.what()).find("owned by uid 65534") != std::string::npos);
        }
    }
    ::unsetenv("TN_STATE_DIR");
}

TEST_CASE(
    "setup gate: a silent flood never pushes out a client that spoke, and a speaking newcomer always finds room") {
    // The gate of a route at 64 descriptors (16 in setup), full of silent connections from many
    // addresses, each younger than `idle`: the case that kept vnets out under a half-open flood.
    SetupGate g({16, 8, std::chrono::milliseconds(250), std::chrono::seconds(2)});
    SetupGate::Clock::time_point t0{};
    using std::chrono::milliseconds;
    for (int i = 0; i < 16; ++i) REQUIRE(g.admit("flood" + std::to_string(i), t0).id);
    // A vnet's control connection arrives with its ClientHello already in: it takes a silent slot
    // at once, however young.
    auto ctl = g.admit("127.0.0.1", t0 + milliseconds(1), true);
    REQUIRE(ctl.id);
    REQUIRE(ctl.evict);
    // ...and so does its first link, from the same address.
    auto link = g.admit("127.0.0.1", t0 + milliseconds(2), true);
    REQUIRE(link.id);
    REQUIRE(link.evict);
    CHECK(g.from("127.0.0.1") == 2);
    // The flood's next silent connections, from addresses holding nothing now, may not push out
    // the two that spoke (before, the biggest-source rule took the address holding two).
    for (int i = 0; i < 40; ++i) {
        auto r = g.admit("flood" + std::to_string(i % 20), t0 + milliseconds(3 + i));
        if (r.evict) CHECK((*r.evict != *ctl.id && *r.evict != *link.id));
        if (r.id) g.done(*r.id);  // the flood's connection goes away again
    }
    CHECK(g.from("127.0.0.1") == 2);
    // Out of descriptors, the route sheds a silent entry first, never one that spoke.
    auto v = g.victim();
    REQUIRE(v);
    CHECK((*v != *ctl.id && *v != *link.id));
    // Silent entries that aged still make way for silent newcomers, as before.
    auto late = g.admit("flood99", t0 + milliseconds(300));
    REQUIRE(late.id);
    REQUIRE(late.evict);
    CHECK((*late.evict != *ctl.id && *late.evict != *link.id));
}

TEST_CASE("setup gate: a speaking newcomer pushes out the oldest silent entry before any other") {
    SetupGate g({3, 3, std::chrono::milliseconds(250), std::chrono::seconds(2)});
    SetupGate::Clock::time_point t0{};
    auto a = g.admit("a", t0, true);  // spoke at once
    auto b = g.admit("b", t0);        // silent
    auto c = g.admit("a", t0, true);
    REQUIRE((a.id && b.id && c.id));
    // "a" holds two: the biggest-source rule would pick it, but the silent one goes first.
    auto d = g.admit("d", t0, true);
    REQUIRE(d.id);
    CHECK(d.evict == b.id);
    // Nothing silent left: the biggest other source makes room for a speaking newcomer, as before.
    auto e = g.admit("e", t0, true);
    REQUIRE(e.id);
    CHECK(e.evict == a.id);
    // A silent newcomer finds nothing silent nor slow: refused.
    CHECK_FALSE(g.admit("f", t0).id);
}

TEST_CASE("base control socket: creates its 0700 directory, replaces a stale socket, refuses a symlinked directory") {
    TempDir d;
    auto dir = d.p / "run";
    auto path = dir / "c.sock";
    {
        auto old = ::umask(0);
        auto fd = tn::bind_control_socket(path);
        ::umask(old);
        REQUIRE(fd.valid());
        struct stat st {};
        REQUIRE(::stat(dir.c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0700);
        REQUIRE(::stat(path.c_str(), &st) == 0);
        CHECK(S_ISSOCK(st.st_mode));
        CHECK((st.st_mode & 0777) == 0600);
    }
    // The socket file outlived its descriptor (a crashed daemon): the next start binds over it.
    auto again = tn::bind_control_socket(path);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
    tn::UniqueFd c(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(::connect(c.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    tn::UniqueFd s(::accept(again.get(), nullptr, nullptr));
    REQUIRE(s.valid());
    CHECK(tn::peer_is_owner(s.get()));
    CHECK_FALSE(tn::foreign_peer(s.get()));
    // A symlink to a private directory is not the directory itself: refused (78).
    fs::create_symlink(dir, d.p / "link");
    CHECK_THROWS_AS(tn::require_private_dir(d.p / "link"), tn::Error);
    try {
        tn::bind_control_socket(d.p / "link" / "x.sock");
        FAIL("a symlinked state directory was accepted");
    } catch (const tn::Error& e) {
        CHECK(e.code() == tn::ExitCode::config);
    }
}

TEST_CASE("base control socket: a peer of another user is foreign and named by its uid") {
    if (::geteuid() != 0) return;  // needs root to become another user
    TempDir d;
    auto path = d.p / "run" / "c.sock";
    auto acc = tn::bind_control_socket(path);
    ::chmod(d.p.c_str(), 0755);
    ::chmod((d.p / "run").c_str(), 0755);  // so that the other user reaches it: the uid check must still hold
    ::chmod(path.c_str(), 0666);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
        int c = ::socket(AF_UNIX, SOCK_STREAM, 0);
        if (::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) ::_exit(3);
        char b;
        (void)::read(c, &b, 1);  // until the parent closes
        ::_exit(0);
    }
    pollfd pf{acc.get(), POLLIN, 0};
    REQUIRE(::poll(&pf, 1, 60000) == 1);  // a guard against a hang if the child failed, not a timing check
    tn::UniqueFd s(::accept(acc.get(), nullptr, nullptr));
    REQUIRE(s.valid());
    auto who = tn::foreign_peer(s.get());
    REQUIRE(who);
    CHECK(*who == 65534u);
    CHECK_FALSE(tn::peer_is_owner(s.get()));
    s.reset();
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("setup gate: silent connections make way first, speaking ones only when slow") {
    SetupGate g({3, 2, std::chrono::milliseconds(250), std::chrono::seconds(2)});
    SetupGate::Clock::time_point t0{};
    using std::chrono::milliseconds;
    auto a = g.admit("a", t0), b = g.admit("b", t0), c = g.admit("c", t0);
    g.progressed(*b.id);  // b speaks (a handshake in progress)
    auto d = g.admit("d", t0 + milliseconds(300));
    CHECK(d.evict == a.id);  // the oldest silent one
    auto e = g.admit("e", t0 + milliseconds(310));
    CHECK(e.evict == c.id);
    // Only young silent ones are left besides b, which is not slow yet: refused.
    CHECK_FALSE(g.admit("f", t0 + milliseconds(320)).id);
    auto h = g.admit("h", t0 + milliseconds(2100));
    CHECK(h.evict == d.id);  // silent before slow
    g.progressed(*e.id);
    g.progressed(*h.id);
    auto i = g.admit("i", t0 + milliseconds(2200));
    CHECK(i.evict == b.id);  // all speak now: the slow one goes
}

TEST_CASE("setup gate: the handshake window counts speaking entries, an eighth of it per source, until done or slow") {
    using std::chrono::milliseconds;
    SetupGate g({64, 32, milliseconds(250), std::chrono::seconds(2), 16});  // a share of 2 per source
    SetupGate::Clock::time_point t0{};
    CHECK(SetupCaps::for_fd_limit(1 << 20).window == 256);
    CHECK(SetupCaps::for_fd_limit(20).window == 4);
    g.admit("silent", t0);
    CHECK(g.at_work() == 0);  // a connection that sent nothing costs nothing yet
    std::vector<std::uint64_t> a;
    for (int i = 0; i < 3; ++i) a.push_back(*g.admit("a", t0, true).id);
    CHECK(g.at_work() == 2);  // a's third is over its share: it is served, but does not count
    for (char src = 'b'; src <= 'g'; ++src)
        for (int i = 0; i < 2; ++i) g.admit(std::string(1, src), t0 + milliseconds(10 * (src - 'a')), true);
    CHECK(g.at_work() == 14);
    CHECK(g.window_open(t0 + milliseconds(100)));
    auto h1 = g.admit("h", t0 + milliseconds(500), true);
    g.admit("h", t0 + milliseconds(500), true);
    CHECK_FALSE(g.window_open(t0 + milliseconds(600)));          // 16 at work: the listener pauses
    CHECK(g.window_moves_at() == t0 + std::chrono::seconds(2));  // when a's first turns slow
    g.done(*h1.id);                                              // a finished handshake leaves the window
    CHECK(g.window_open(t0 + milliseconds(700)));
    g.admit("i", t0 + milliseconds(800), true);
    CHECK_FALSE(g.window_open(t0 + milliseconds(900)));
    g.done(a[2]);  // one that never counted: the window stays full
    CHECK_FALSE(g.window_open(t0 + milliseconds(900)));
    // At 2 s a's two turn slow (stalled peers): they keep their slots, not their places.
    CHECK(g.window_open(t0 + std::chrono::seconds(2)));
    CHECK(g.at_work() == 14);
    CHECK(g.from("a") == 2);
    CHECK(g.window_moves_at() == t0 + milliseconds(2010));  // b's, next
    // Everything turns slow in the end: the window never stays shut.
    CHECK(g.window_open(t0 + std::chrono::seconds(5)));
    CHECK(g.at_work() == 0);
    CHECK_FALSE(g.window_moves_at());
}

TEST_CASE("setup gate: the window's bookkeeping stays bounded when no listener asks about it") {
    // The HTTP heads' gates admit and finish entries but never call window_open().
    SetupGate g({64, 32, std::chrono::milliseconds(250), std::chrono::seconds(2), 16});
    SetupGate::Clock::time_point t{};
    for (int i = 0; i < 10000; ++i) {
        t += std::chrono::milliseconds(10);
        g.done(*g.admit("10.0.0." + std::to_string(i % 50), t, true).id);
    }
    CHECK(g.at_work() == 0);
    CHECK(g.window_queue() <= 1);  // each admit drops the finished ones in front of it
}

TEST_CASE("accept loop: may_accept pauses it, resume() accepts what waited in the listen queue") {
    asio::io_context io;
    auto acc = std::make_shared<tcp::acceptor>(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    std::vector<tcp::socket> accepted;
    std::size_t allowed = 1;
    auto loop = TcpAcceptLoop::start(
        acc, {[&](tcp::socket s) { accepted.push_back(std::move(s)); }, [](const std::string&) {}, nullptr},
        "test listener");
    loop->pause_unless([&]() { return accepted.size() < allowed; });
    std::vector<tcp::socket> clients;
    for (int i = 0; i < 3; ++i) {
        clients.emplace_back(io);
        clients.back().connect(acc->local_endpoint());  // the kernel completes the handshake: queued
    }
    for (int i = 0; i < 10000 && !loop->paused(); ++i) io.run_one();
    REQUIRE(loop->paused());
    io.poll();  // whatever is ready runs: no accept is armed (and with no work left, io stops)
    CHECK(accepted.size() == 1);
    io.restart();
    loop->resume();  // still not allowed: it pauses again before accepting
    io.poll();
    CHECK(accepted.size() == 1);
    io.restart();
    CHECK(loop->paused());
    allowed = 3;
    loop->resume();
    for (int i = 0; i < 10000 && accepted.size() < 3; ++i) io.run_one();
    CHECK(accepted.size() == 3);
    CHECK(loop->paused());
    loop->stop();
    loop->resume();  // a stopped loop stays stopped
    io.run();
    CHECK(accepted.size() == 3);
}
