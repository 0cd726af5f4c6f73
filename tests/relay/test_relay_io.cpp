// The relay's I/O pieces over real loopback sockets: greedy frame reads (what comes behind a frame
// waits in Stream::unread), the route's record relay (small records read greedily, bulk ones
// spliced, cut anywhere, the route's own frames first, what follows an EOF record left unread), and
// connect_nearby.
#include <catch2/catch.hpp>

#include <poll.h>

#include <random>
#include <thread>

#include "relay/io_connect.hpp"
#include "relay/io_record_relay.hpp"
#include "relay/seal.hpp"

#include "loopback_pair.hpp"

using namespace tn::relay;
using namespace tn::relay::test;

namespace {
// Writes `b` in pieces of random size (1 byte up to 40 KiB), so headers and records are cut anywhere.
void write_cut(tcp::socket& s, const Bytes& b, std::uint32_t seed) {
    std::mt19937 r(seed);
    for (std::size_t at = 0; at < b.size();) {
        std::size_t n = std::min<std::size_t>(b.size() - at, r() % 3 == 0 ? 1 + r() % 5 : 1 + r() % 40000);
        asio::write(s, asio::buffer(b.data() + at, n));
        at += n;
    }
}
// A stream of records: `plains` sealed one per record, then the EOF record (`keep`).
Bytes records(LinkSeal& seal, const std::vector<Bytes>& plains, bool keep) {
    Bytes out;
    for (const auto& p : plains) {
        Bytes rec(p.size() + kRecordOverhead);
        rec.resize(seal.tx.seal(p, rec.data()));
        out.insert(out.end(), rec.begin(), rec.end());
    }
    Bytes eof(kRecordOverhead);
    eof.resize(seal.tx.seal_eof(eof.data(), keep));
    out.insert(out.end(), eof.begin(), eof.end());
    return out;
}
// Reads records up to and including the EOF record and opens them; returns the plaintexts.
std::vector<Bytes> read_records(tcp::socket& s, LinkSeal& seal, bool& keep) {
    std::vector<Bytes> got;
    for (;;) {
        std::array<std::uint8_t, kRecordHeader> h{};
        asio::read(s, asio::buffer(h));
        auto head = seal.rx.parse(h);
        Bytes rec(head.size());
        std::copy(h.begin(), h.end(), rec.begin());
        asio::read(s, asio::buffer(rec.data() + kRecordHeader, rec.size() - kRecordHeader));
        Bytes plain(head.plain);
        plain.resize(seal.rx.open(rec, plain.data()));
        if (head.eof) {
            keep = head.keep;
            return got;
        }
        got.push_back(std::move(plain));
    }
}
bool readable_within(tcp::socket& s, int ms) {
    pollfd p{s.native_handle(), POLLIN, 0};
    return ::poll(&p, 1, ms) == 1;
}
std::vector<Bytes> mixed_sizes(std::uint32_t seed) {
    std::mt19937 r(seed);
    std::vector<Bytes> v;
    for (int i = 0; i < 60; ++i) {
        // Mostly small (setup and interactive traffic), some bulk ones that the relay splices.
        std::size_t n = r() % 4 == 0 ? 16000 + r() % (kRecordMax - 16000) : 1 + r() % 300;
        Bytes b(n);
        for (auto& x : b) x = static_cast<std::uint8_t>(r());
        v.push_back(std::move(b));
    }
    return v;
}
}  // namespace

TEST_CASE("a frame read takes what the socket holds and leaves what follows the frame in unread") {
    asio::io_context io;
    auto p = connected(io);
    auto s = std::make_shared<Stream>(std::move(p.b));
    auto one = encode_frame(Frame{MsgType::link_request, Bytes{1, 2, 3}});
    auto two = encode_frame(Frame{MsgType::link_ok, Bytes(57, 9)});
    Bytes tail{0x01, 0x00, 0x00, 0x05, 0xaa};  // the start of a record behind the frames
    Bytes wire = one;
    wire.insert(wire.end(), two.begin(), two.end());
    wire.insert(wire.end(), tail.begin(), tail.end());
    asio::write(p.a, asio::buffer(wire));  // one segment for all of it
    std::vector<Frame> got;
    async_read_frame(s, [&](error_code ec, Frame f, std::string) {
        REQUIRE(!ec);
        got.push_back(f);
        async_read_frame(s, [&](error_code ec2, Frame f2, std::string) {
            REQUIRE(!ec2);
            got.push_back(f2);
        });
    });
    io.run();
    REQUIRE(got.size() == 2);
    CHECK(got[0].type == MsgType::link_request);
    CHECK(got[0].payload == Bytes{1, 2, 3});
    CHECK(got[1].type == MsgType::link_ok);
    CHECK(got[1].payload == Bytes(57, 9));
    CHECK(s->unread == tail);
}

TEST_CASE("a frame cut anywhere across segments reads whole, and nothing behind it is taken") {
    auto frame = encode_frame(Frame{MsgType::link_ok, Bytes(57, 7)});
    for (std::size_t cut = 1; cut < frame.size(); ++cut) {
        asio::io_context io;
        auto p = connected(io);
        auto s = std::make_shared<Stream>(std::move(p.b));
        Frame got;
        bool done = false;
        async_read_frame(s, [&](error_code ec, Frame f, std::string) {
            REQUIRE(!ec);
            got = f;
            done = true;
        });
        asio::write(p.a, asio::buffer(frame.data(), cut));
        io.run_for(std::chrono::milliseconds(5));
        CHECK(!done);
        asio::write(p.a, asio::buffer(frame.data() + cut, frame.size() - cut));
        io.restart();
        io.run();
        CHECK(done);
        CHECK(got.payload == Bytes(57, 7));
        CHECK(s->unread.empty());
    }
}

TEST_CASE("the route's relay moves small and bulk records cut anywhere, its frames first, and leaves what follows an EOF record") {
    auto cipher = static_cast<Cipher>(GENERATE(int(kLinkCipher), int(Cipher::none)));
    asio::io_context io;
    auto la = connected(io), lb = connected(io);  // .a: the vnet's end, .b: the route's end
    auto ra = std::make_shared<Stream>(std::move(la.b));
    auto rb = std::make_shared<Stream>(std::move(lb.b));
    LinkSeal use(cipher, key_of(3), Side::use), serve(cipher, key_of(3), Side::serve);
    auto up = mixed_sizes(1), down = mixed_sizes(2);
    Bytes to_b = encode_frame(Frame{MsgType::link_ok, Bytes(57, 1)});
    Bytes to_a = encode_frame(Frame{MsgType::link_opened, Bytes(8, 2)});
    Bytes next = encode_frame(Frame{MsgType::link_open, Bytes(87, 3)});  // the using vnet's next LINK_OPEN
    // The using vnet's first records came in with its LINK_OPEN (the frame read left them unread),
    // or it has sent none yet.
    bool early = GENERATE(true, false);
    Bytes wire_a = records(use, up, true);
    std::size_t ahead = early ? 100 : 0;
    ra->unread.assign(wire_a.begin(), wire_a.begin() + static_cast<std::ptrdiff_t>(ahead));
    Bytes rest_a(wire_a.begin() + static_cast<std::ptrdiff_t>(ahead), wire_a.end());
    rest_a.insert(rest_a.end(), next.begin(), next.end());
    PipePool pipes;
    std::string error = "(running)";
    bool keep_a = false, keep_b = true;
    std::uint64_t ab = 0, ba = 0;
    auto relay = RecordRelay::start(ra, rb, pipes, tag_size(cipher), to_a, to_b, [&](const LinkEnd& e, const RecordRelay& r, bool ka, bool kb) {
        error = e.text();
        ab = r.bytes_a_to_b();
        ba = r.bytes_b_to_a();
        keep_a = ka;
        keep_b = kb;
    });
    std::thread t([&] { io.run(); });
    // The serving vnet gets the route's frames before any record, and the using vnet gets LINK_OPENED
    // before the serving side's first record.
    Bytes head_b(to_b.size()), head_a(to_a.size());
    REQUIRE(readable_within(lb.a, 5000));
    asio::read(lb.a, asio::buffer(head_b));
    CHECK(head_b == to_b);
    std::thread wa([&] { write_cut(la.a, rest_a, 11); });
    std::thread wb([&] { write_cut(lb.a, records(serve, down, false), 12); });
    bool ka = false, kb = true;
    std::vector<Bytes> got_b, got_a;
    std::thread rb_reader([&] { got_b = read_records(lb.a, serve, ka); });
    asio::read(la.a, asio::buffer(head_a));
    got_a = read_records(la.a, use, kb);
    rb_reader.join();
    wa.join();
    wb.join();
    t.join();  // the relay ended: both EOF records passed
    CHECK(head_a == to_a);
    CHECK(got_b == up);
    CHECK(got_a == down);
    CHECK(ka);
    CHECK(!kb);
    CHECK(error.empty());
    CHECK(keep_a);
    CHECK(!keep_b);
    CHECK(ab == wire_a.size());
    // The payload (per-serve traffic) is what the two ends sealed, without headers and tags.
    auto payload = [](const std::vector<Bytes>& v) {
        std::uint64_t n = 0;
        for (const auto& b : v) n += b.size();
        return n;
    };
    CHECK(relay->payload_a_to_b() == payload(up));
    CHECK(relay->payload_b_to_a() == payload(down));
    CHECK(ra->unread == next);  // the frame reader's, not relayed
    CHECK(ra->socket().is_open());
    CHECK(rb->socket().is_open());
}

TEST_CASE("a relay that ends inside start() still hands its counters to the callback") {
    // Both ends' whole streams are in before the relay starts (a loaded route can be descheduled
    // between its two first reads while a short connection runs its course): it ends clean inside
    // start(), before the caller holds it, and the callback is the only place its counts are read.
    asio::io_context io;
    auto la = connected(io), lb = connected(io);
    auto ra = std::make_shared<Stream>(std::move(la.b));
    auto rb = std::make_shared<Stream>(std::move(lb.b));
    LinkSeal use(kLinkCipher, key_of(4), Side::use), serve(kLinkCipher, key_of(4), Side::serve);
    Bytes up = records(use, {Bytes(1, 7)}, false), down = records(serve, {Bytes(64, 8)}, false);
    ra->unread = up;
    asio::write(lb.a, asio::buffer(down));
    PipePool pipes;
    bool ended = false;
    std::uint64_t in = 0, out = 0;
    RecordRelay::start(ra, rb, pipes, kTagSize, {}, {}, [&](const LinkEnd& e, const RecordRelay& r, bool, bool) {
        CHECK(e.clean());
        ended = true;
        in = r.payload_a_to_b();
        out = r.payload_b_to_a();
    });
    REQUIRE(ended);
    CHECK(in == 1);
    CHECK(out == 64);
}

TEST_CASE("the route's relay ends a pair on a bad record header, a truncated stream, and a close before the EOF record") {
    asio::io_context io;
    auto la = connected(io), lb = connected(io);
    auto ra = std::make_shared<Stream>(std::move(la.b));
    auto rb = std::make_shared<Stream>(std::move(lb.b));
    PipePool pipes;
    std::string error = "(running)";
    LinkEnd::Kind kind = LinkEnd::Kind::clean;
    RecordRelay::start(ra, rb, pipes, kTagSize, {}, {}, [&](const LinkEnd& e, const RecordRelay&, bool, bool) {
        error = e.text();
        kind = e.kind;
    });
    SECTION("an unknown record type") {
        Bytes bad{0x7f, 0, 0, 1, 0};
        asio::write(la.a, asio::buffer(bad));
    }
    SECTION("a close inside a record") {
        Bytes part{0x01, 0, 0, 50, 1, 2, 3};
        asio::write(la.a, asio::buffer(part));
        la.a.close();
    }
    io.run();
    CHECK(error.find(error.find("protocol error") != std::string::npos ? "protocol error" : "truncated") != std::string::npos);
    CHECK((kind == LinkEnd::Kind::protocol || kind == LinkEnd::Kind::truncated));
    CHECK(error != "(running)");
    CHECK(!ra->socket().is_open());
}

TEST_CASE("connect_nearby finishes a loopback connect inside the call, and reports a refusal") {
    asio::io_context io;
    tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket s(io);
    bool called = false;
    error_code got = asio::error::would_block;
    connect_nearby(s, acc.local_endpoint(), [&](error_code ec) {
        called = true;
        got = ec;
    });
    CHECK(called);  // before any event loop ran
    CHECK(!got);
    CHECK(s.non_blocking());
    tcp::socket peer(io);
    acc.accept(peer);
    asio::write(s, asio::buffer("hi", 2));
    std::array<char, 2> b{};
    asio::read(peer, asio::buffer(b));
    CHECK(std::string(b.data(), 2) == "hi");

    auto port = acc.local_endpoint().port();
    acc.close();
    tcp::socket r(io);
    called = false;
    connect_nearby(r, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), [&](error_code ec) {
        called = true;
        got = ec;
    });
    io.run();
    CHECK(called);
    CHECK(got == asio::error::connection_refused);
}

TEST_CASE("connect_nearby waits like any connect when the handshake is not over inside the call") {
    // A listener whose accept queue is full drops SYNs: the connect stays in SYN_SENT until the
    // queue has room and the SYN is sent again (about a second later).
    asio::io_context io;
    tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acc.listen(1);
    auto ep = acc.local_endpoint();
    std::vector<tcp::socket> fill;
    auto syn_sent = [](tcp::socket& s) {
        tcp_info ti{};
        socklen_t l = sizeof ti;
        return ::getsockopt(s.native_handle(), IPPROTO_TCP, TCP_INFO, &ti, &l) == 0 && ti.tcpi_state == TCP_SYN_SENT;
    };
    for (int i = 0; i < 16 && (fill.empty() || !syn_sent(fill.back())); ++i) {
        fill.emplace_back(io);
        fill.back().open(tcp::v4());
        fill.back().non_blocking(true);
        (void)::connect(fill.back().native_handle(), ep.data(), static_cast<socklen_t>(ep.size()));  // EINPROGRESS
    }
    REQUIRE(syn_sent(fill.back()));
    tcp::socket s(io);
    bool called = false;
    error_code got = asio::error::would_block;
    connect_nearby(s, ep, [&](error_code ec) {
        called = true;
        got = ec;
    });
    CHECK(!called);  // it waits in the event loop
    std::vector<tcp::socket> taken;
    for (std::size_t i = 0; i < fill.size() + 1; ++i) {
        acc.async_accept([&](error_code ec, tcp::socket p) {
            if (!ec) taken.push_back(std::move(p));
        });
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!called && std::chrono::steady_clock::now() < deadline) io.run_one_for(std::chrono::milliseconds(100));
    CHECK(called);
    CHECK(!got);
    asio::write(s, asio::buffer("ok", 2));  // connected for real
}
