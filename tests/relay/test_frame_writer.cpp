// FrameWriter over a real loopback socket: frames queued while a write is out go in one write of at
// most kBatch bytes, in order; queued() counts every byte not yet written; a failed write reports
// once and empties the queue.
#include <catch2/catch.hpp>

#include <thread>

#include "loopback_pair.hpp"

using namespace tn::relay;
using namespace tn::relay::test;

namespace {
// A frame's bytes: `n` bytes of `fill` (the writer sends what it is given: the frame encoding does
// not matter here, only order and sizes).
Bytes chunk(std::size_t n, std::uint8_t fill) { return Bytes(n, fill); }

Bytes read_exactly(tcp::socket& s, std::size_t n) {
    Bytes got(n);
    asio::read(s, asio::buffer(got));
    return got;
}
}  // namespace

TEST_CASE("frame writer: frames queued behind a write go out together, in order, within the batch cap") {
    asio::io_context io;
    auto p = connected(io);
    auto w = std::make_shared<FrameWriter>(std::make_shared<Stream>(std::move(p.a)));
    // The first frame starts a write at once; the rest queue behind it. Of the 6,000-byte ones two
    // fit in a batch (12,000), three do not (18,000 > 16 KiB); a frame over the cap goes alone.
    std::vector<Bytes> frames = {chunk(10, 1),
                                 chunk(6000, 2),
                                 chunk(6000, 3),
                                 chunk(6000, 4),
                                 chunk(6000, 5),
                                 chunk(20, 6),
                                 chunk(FrameWriter::kBatch + 100, 7),
                                 chunk(30, 8),
                                 chunk(40, 9)};
    std::size_t total = 0;
    Bytes want;
    for (auto& f : frames) {
        total += f.size();
        want.insert(want.end(), f.begin(), f.end());
        w->enqueue(f);
    }
    CHECK(w->queued() == total);
    bool failed = false;
    w->on_error = [&](error_code) { failed = true; };
    // The reader drains concurrently: the big frame does not fit in the socket buffers at once.
    Bytes got;
    std::thread reader([&] { got = read_exactly(p.b, total); });
    io.run();
    reader.join();
    CHECK_FALSE(failed);
    CHECK(w->queued() == 0);
    CHECK(got == want);
    // [10] [6000 6000] [6000 6000 20] [16484] [30 40]
    CHECK(w->writes() == 5);
}

TEST_CASE("frame writer: queued() holds the bytes of the write under way until it completes") {
    asio::io_context io;
    auto p = connected(io);
    auto w = std::make_shared<FrameWriter>(std::make_shared<Stream>(std::move(p.a)));
    w->enqueue(chunk(100, 1));
    CHECK(w->queued() == 100);  // written to the socket maybe, but not yet completed
    w->enqueue(chunk(50, 2));
    CHECK(w->queued() == 150);
    io.run_one();  // the first write completes, the second starts
    CHECK(w->queued() == 50);
    io.run();
    CHECK(w->queued() == 0);
    CHECK(read_exactly(p.b, 150).size() == 150);
}

TEST_CASE("frame writer: a failed write reports once, empties the queue, and a later frame is tried anew") {
    asio::io_context io;
    auto p = connected(io);
    auto s = std::make_shared<Stream>(std::move(p.a));
    auto w = std::make_shared<FrameWriter>(s);
    int errors = 0;
    w->on_error = [&](error_code ec) {
        CHECK(ec);
        ++errors;
    };
    w->enqueue(chunk(10, 1));
    for (int i = 0; i < 5; ++i) w->enqueue(chunk(10, 2));
    s->close();  // the batch behind the first write fails
    io.run();
    CHECK(errors == 1);
    CHECK(w->queued() == 0);
    io.restart();
    w->enqueue(chunk(10, 3));
    io.run();
    CHECK(errors == 2);
    CHECK(w->queued() == 0);
}
