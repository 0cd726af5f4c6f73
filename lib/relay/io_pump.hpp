// Pump: moves one proxied connection's bytes between two streams, both ways, with backpressure (a
// side is read only when the previous chunk was written) and half-close (EOF travels as TCP
// shutdown on plain streams and as an EOF frame on TLS links, which have no usable half-close).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "relay/io_splice.hpp"
#include "relay/io_stream.hpp"

namespace tn::relay {

class Pump : public std::enable_shared_from_this<Pump> {
public:
    // Called once when both directions ended or one failed; `error` is empty on a clean end and
    // names the fault otherwise (a malformed frame, a reset).
    using Done = std::function<void(const std::string& error, std::uint64_t a_to_b, std::uint64_t b_to_a)>;

    // With `pipes` and two plain streams, bytes move by splice(2) and never enter userspace; the
    // pool must outlive the pump.
    static std::shared_ptr<Pump> start(StreamPtr a, StreamPtr b, Done done, PipePool* pipes = nullptr);
    void abort();
    std::uint64_t bytes_a_to_b() const { return dir_[0].bytes; }
    std::uint64_t bytes_b_to_a() const { return dir_[1].bytes; }

private:
    struct Dir {
        Stream* from = nullptr;
        Stream* to = nullptr;
        // Allocated only while a chunk is in flight, so an idle connection holds no data buffer.
        std::unique_ptr<std::uint8_t[]> buf;
        std::size_t n = 0;
        std::array<std::uint8_t, kHeaderSize> in_hdr{}, out_hdr{};
        std::uint64_t bytes = 0;
        bool done = false;
        Pipe pipe;                // splice mode: held only while it has bytes in it
        std::size_t in_pipe = 0;
    };
    Pump(StreamPtr a, StreamPtr b, Done done);
    void read(int d);
    void splice_in(int d);
    void splice_out(int d);
    void got(int d, std::size_t n);
    void eof(int d);
    void finish(const std::string& error);

    StreamPtr a_, b_;
    Done done_;
    Dir dir_[2];
    bool finished_ = false;
    PipePool* pipes_ = nullptr;  // set when both sides are plain
};

}  // namespace tn::relay
