// The byte pump's sealed data path over real loopback sockets: records of every size arriving many to a
// read or cut mid-record (opened in place, small plaintext pieces joined, more pieces than iovecs),
// bulk sealing into MSS-sized records, the EOF record, and a tampered record resetting the connection.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <future>
#include <random>
#include <thread>

#include "relay/io_pump.hpp"

#include "loopback_pair.hpp"

using namespace tn::relay;
using namespace tn::relay::test;

namespace {
Bytes pattern(std::size_t n, std::uint32_t seed) {
    Bytes b(n);
    std::mt19937 r(seed);
    for (auto& x : b) x = static_cast<std::uint8_t>(r());
    return b;
}
Bytes read_all(tcp::socket& s) {
    Bytes got;
    std::array<std::uint8_t, 65536> buf{};
    for (;;) {
        error_code ec;
        auto n = s.read_some(asio::buffer(buf), ec);
        got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
        if (ec) break;
    }
    return got;
}

// One record from the link's far end, read whole and opened: its plaintext and whether it was the EOF.
std::pair<Bytes, bool> next_record(tcp::socket& peer, RecordOpener& rx) {
    std::array<std::uint8_t, kRecordHeader> hb{};
    asio::read(peer, asio::buffer(hb));
    auto h = rx.parse(hb);
    Bytes rec(h.size());
    std::copy(hb.begin(), hb.end(), rec.begin());
    asio::read(peer, asio::buffer(rec.data() + kRecordHeader, rec.size() - kRecordHeader));
    Bytes out(h.plain);
    CHECK(rx.open(rec, out.data()) == h.plain);
    return {out, h.eof};
}

// Runs `f` on `io`'s thread, between its handlers, and returns what it returned.
template <class F>
auto on_io(asio::io_context& io, F f) {
    std::promise<decltype(f())> done;
    asio::post(io, [&] { done.set_value(f()); });
    return done.get_future().get();
}

// A pump between a link (its far end: `peer`, driven by the test with its own LinkSeal; sealed, or
// in clear records with Cipher::none) and a local socket (its far end: `local`), running on a thread
// until it ends.
struct Rig {
    explicit Rig(Cipher c = kLinkCipher) : cipher(c) {}
    Cipher cipher;
    asio::io_context io;
    Pair link = connected(io), loc = connected(io);
    std::string error = "(running)";
    LinkEnd::Kind kind = LinkEnd::Kind::clean;
    std::thread t;
    std::function<bool()> keep;  // the pump's keep_sealed
    StreamPtr l;                 // the pump's link side
    std::shared_ptr<Pump> pump;
    void start() {
        l = std::make_shared<Stream>(std::move(link.b));
        auto p = std::make_shared<Stream>(std::move(loc.a));
        pump = Pump::start(
            l, p,
            [this](const LinkEnd& e, std::uint64_t, std::uint64_t) {
                error = e.text();
                kind = e.kind;
            },
            std::make_unique<LinkSeal>(cipher, key_of(5), Side::serve), nullptr, keep);
        t = std::thread([this] { io.run(); });
    }
    ~Rig() {
        if (t.joinable()) t.join();
    }
};
}  // namespace

TEST_CASE("records of every size, many per read and cut anywhere, open to the same bytes") {
    auto cipher = static_cast<Cipher>(GENERATE(int(kLinkCipher), int(Cipher::none)));
    Rig r(cipher);
    auto& peer = r.link.a;
    auto& local = r.loc.b;
    r.start();
    LinkSeal far(cipher, key_of(5), Side::use);
    // 300 records: under 4 KiB (joined to the previous piece), up to 9 KiB (an iovec each, more than
    // the pump has in one read) and near the cap.
    std::mt19937 rng(11);
    Bytes plain, wire;
    for (int i = 0; i < 300; ++i) {
        std::size_t n = i % 7 == 0 ? kRecordMax - rng() % 100 : 1 + rng() % 9000;
        auto p = pattern(n, static_cast<std::uint32_t>(i));
        plain.insert(plain.end(), p.begin(), p.end());
        Bytes rec(n + kRecordOverhead);
        rec.resize(far.tx.seal(p, rec.data()));
        wire.insert(wire.end(), rec.begin(), rec.end());
    }
    Bytes eof(kRecordOverhead);
    eof.resize(far.tx.seal_eof(eof.data()));
    wire.insert(wire.end(), eof.begin(), eof.end());
    // Sent in uneven pieces so reads end mid-header and mid-record; one big piece too.
    std::thread w([&] {
        std::size_t off = 0;
        for (std::size_t step :
             {std::size_t(3), std::size_t(17), std::size_t(70000), std::size_t(1), std::size_t(500000)}) {
            auto n = std::min(step, wire.size() - off);
            asio::write(peer, asio::buffer(wire.data() + off, n));
            off += n;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        asio::write(peer, asio::buffer(wire.data() + off, wire.size() - off));
        peer.shutdown(tcp::socket::shutdown_send);
    });
    auto got = read_all(local);  // ends at the EOF record: the pump half-closes the local side
    w.join();
    CHECK(got.size() == plain.size());
    CHECK((got == plain));  // no expansion: megabytes of bytes would take minutes to print
    local.close();          // the other direction ends too (a clean end, the EOF record on the link)
    auto back = read_all(peer);
    REQUIRE(back.size() == far.rx.overhead());
    CHECK(far.rx.open(back, back.data() + kRecordHeader) == 0);
    CHECK(far.rx.ended());
    r.io.stop();
}

TEST_CASE("bulk plaintext is sealed into records the far end opens, each within the cap") {
    auto cipher = static_cast<Cipher>(GENERATE(int(kLinkCipher), int(Cipher::none)));
    Rig r(cipher);
    auto& peer = r.link.a;
    auto& local = r.loc.b;
    r.start();
    LinkSeal far(cipher, key_of(5), Side::use);
    auto plain = pattern(8 << 20, 99);
    std::thread w([&] {
        asio::write(local, asio::buffer(plain));
        local.shutdown(tcp::socket::shutdown_send);
    });
    // The link's connection stays up after the EOF record (the other direction is still open): read
    // record by record until it.
    Bytes got;
    bool ended = false;
    std::size_t records = 0;
    while (!ended) {
        auto [out, eof] = next_record(peer, far.rx);
        got.insert(got.end(), out.begin(), out.end());
        ended = eof;
        ++records;
    }
    w.join();
    CHECK((got == plain));  // no expansion: megabytes of bytes would take minutes to print
    CHECK(records > (8u << 20) / kRecordMax);
    peer.close();  // truncates the other direction: the pump ends
    r.io.stop();
}

TEST_CASE("an idle pump's ciphers are trimmed and built again for the next bytes, both ways") {
    Rig r;
    auto& peer = r.link.a;
    auto& local = r.loc.b;
    r.start();
    LinkSeal far(kLinkCipher, key_of(5), Side::use);
    auto trim = [&r] { return on_io(r.io, [&r] { return r.pump->trim_if_idle(); }); };
    for (int round = 0; round < 3; ++round) {
        auto up = pattern(1000 + round, round), down = pattern(3000 + round, 10 + round);
        Bytes rec(up.size() + kRecordOverhead);
        rec.resize(far.tx.seal(up, rec.data()));
        asio::write(peer, asio::buffer(rec));
        Bytes got(up.size());
        asio::read(local, asio::buffer(got));
        CHECK(got == up);
        asio::write(local, asio::buffer(down));
        Bytes opened;
        while (opened.size() < down.size()) {
            auto out = next_record(peer, far.rx).first;
            opened.insert(opened.end(), out.begin(), out.end());
        }
        CHECK(opened == down);
        // Both directions wrote all they read and wait for the next read: nothing is held.
        CHECK(trim());
    }
    peer.close();
    r.io.stop();
}

TEST_CASE("IdlePumps trims the live pumps and forgets the ended ones") {
    Rig r;
    auto running = asio::make_work_guard(r.io);  // io.run() goes on after the pump ends, for the posts below
    r.start();
    IdlePumps pumps;
    pumps.add(r.pump);
    auto trim = [&] { return on_io(r.io, [&] { return pumps.trim(); }); };
    CHECK(trim() == 1);
    CHECK(pumps.size() == 1);
    r.link.a.close();  // the link went without its EOF record: the pump ends
    while (!on_io(r.io, [&] { return r.error != "(running)"; })) std::this_thread::yield();
    asio::post(r.io, [&] { r.pump.reset(); });  // the owner lets go: only the list's weak reference is left
    CHECK(trim() == 0);
    CHECK(pumps.size() == 0);
    r.io.stop();
}

TEST_CASE("a tampered record among good ones resets the local connection") {
    Rig r;
    auto& peer = r.link.a;
    auto& local = r.loc.b;
    r.start();
    LinkSeal far(kLinkCipher, key_of(5), Side::use);
    Bytes wire;
    for (int i = 0; i < 5; ++i) {
        auto p = pattern(1000, static_cast<std::uint32_t>(i));
        Bytes rec(p.size() + kRecordOverhead);
        rec.resize(far.tx.seal(p, rec.data()));
        if (i == 3) rec[100] ^= 1;
        wire.insert(wire.end(), rec.begin(), rec.end());
    }
    asio::write(peer, asio::buffer(wire));
    error_code ec;
    std::array<std::uint8_t, 65536> buf{};
    std::size_t total = 0;
    for (;;) {
        auto n = local.read_some(asio::buffer(buf), ec);
        total += n;
        if (ec) break;
    }
    CHECK(ec == asio::error::connection_reset);
    CHECK(total <= 3000);  // nothing of the tampered record or after it
    r.io.stop();
    if (r.t.joinable()) r.t.join();
    CHECK(r.error.find("protocol error") != std::string::npos);
    CHECK(r.kind == LinkEnd::Kind::protocol);
}

TEST_CASE("on a kept link, bytes right behind the peer's EOF record are left for the next frame read") {
    // The service closes first: our EOF record (keep) goes out, then the route parks the link and
    // sends the next request right behind the peer's EOF record, so one read can get both.
    auto cipher = static_cast<Cipher>(GENERATE(int(kLinkCipher), int(Cipher::none)));
    for (bool kept : {true, false}) {
        Rig r(cipher);
        r.keep = [kept] { return kept; };
        auto& peer = r.link.a;
        auto& local = r.loc.b;
        r.start();
        LinkSeal far(cipher, key_of(5), Side::use);
        local.shutdown(tcp::socket::shutdown_send);
        std::array<std::uint8_t, kRecordOverhead> ours{};
        asio::read(peer, asio::buffer(ours.data(), far.rx.overhead()));
        CHECK(far.rx.open(std::span(ours.data(), far.rx.overhead()), ours.data() + kRecordHeader) == 0);
        CHECK(far.rx.parse(ours).keep == kept);
        Bytes wire(kRecordOverhead);
        wire.resize(far.tx.seal_eof(wire.data(), true));
        auto next = encode_frame(Frame{MsgType::link_request, Bytes{1, 2, 3}});
        wire.insert(wire.end(), next.begin(), next.end());
        asio::write(peer, asio::buffer(wire));  // one write: the pump reads both at once
        CHECK(read_all(local).empty());         // nothing for the service: an EOF (kept) or a reset
        if (r.t.joinable()) r.t.join();         // the pump ended and nothing else waits
        if (kept) {
            CHECK(r.error.empty());
            CHECK(r.l->socket().is_open());
            CHECK(r.l->unread == next);
        } else {
            CHECK(r.error.find("bytes after the EOF record") != std::string::npos);
            CHECK(!r.l->socket().is_open());
        }
    }
}

TEST_CASE(
    "a short path gets fixed socket buffers that autotuning no longer grows; a long or unmeasured one keeps "
    "autotuning") {
    CHECK(short_path(30));
    CHECK(short_path(kShortPathRtt - 1));
    CHECK_FALSE(short_path(kShortPathRtt));
    CHECK_FALSE(short_path(40000));  // a WAN round trip: a fixed buffer would cap its window
    CHECK_FALSE(short_path(0));

    asio::io_context io;
    auto p = connected(io);  // loopback: a round trip of tens of microseconds, or more on a loaded host
    // What the kernel measured at the handshake decides; nothing has moved since, so it is what
    // fit_buffers_to_path reads too. (On a busy host a loopback handshake can take over 200 us.)
    auto handshake_rtt = [](tcp::socket& s) {
        tcp_info ti{};
        socklen_t l = sizeof ti;
        ::getsockopt(s.native_handle(), IPPROTO_TCP, TCP_INFO, &ti, &l);
        return ti.tcpi_rtt;
    };
    CHECK(fit_buffers_to_path(p.a) == short_path(handshake_rtt(p.a)));
    const bool short_b = short_path(handshake_rtt(p.b));
    REQUIRE(fit_buffers_to_path(p.b) == short_b);
    if (!short_b) return;  // a long path keeps autotuning: nothing fixed to check
    auto rcvbuf = [](tcp::socket& s) {
        int v = 0;
        socklen_t l = sizeof v;
        ::getsockopt(s.native_handle(), SOL_SOCKET, SO_RCVBUF, &v, &l);
        return v;
    };
    // The kernel caps it at net.core.rmem_max and doubles what it keeps.
    int rmem_max = kShortPathBuffer;
    if (std::FILE* f = std::fopen("/proc/sys/net/core/rmem_max", "r")) {
        if (std::fscanf(f, "%d", &rmem_max) != 1) rmem_max = kShortPathBuffer;
        std::fclose(f);
    }
    const int fixed = 2 * std::min(kShortPathBuffer, rmem_max);
    CHECK(rcvbuf(p.b) == fixed);
    // 16 MiB through it with a slow reader: autotuning would have grown the receive buffer by now.
    std::thread w([&] {
        Bytes chunk(1 << 20, 0x33);
        for (int i = 0; i < 16; ++i) asio::write(p.a, asio::buffer(chunk));
        p.a.shutdown(tcp::socket::shutdown_send);
    });
    Bytes buf(4096);
    std::size_t got = 0;
    error_code ec;
    while (!ec) got += p.b.read_some(asio::buffer(buf), ec);
    w.join();
    CHECK(got == std::size_t(16) << 20);
    CHECK(rcvbuf(p.b) == fixed);
}
