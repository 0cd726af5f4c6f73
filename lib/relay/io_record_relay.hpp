// RecordRelay: the route's relay between the two vnet ends of a link pair. It moves their records
// (sealed, or in clear with tls = false) without opening them, reading only each record's 4-byte
// header (seal.hpp), so it knows where each direction's stream ends: once both EOF records have
// passed, both links are idle and go back to their pools with no message (doc/PROTOCOL.relay.md §7,
// reused links). Bulk records move with splice(2); small ones (a connection's setup, interactive
// traffic) are read greedily into userspace and sent on in one write, which costs half the syscalls
// of a header peek and two splices per record.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <string>

#include "relay/io_splice.hpp"
#include "relay/io_stream.hpp"
#include "relay/link_end.hpp"

namespace tn::relay {

class RecordRelay : public std::enable_shared_from_this<RecordRelay> {
public:
    // Called once. A clean `end`: both EOF records passed and both links are left open and idle (no
    // wait pending on them); `keep_a`/`keep_b` say whose vnet keeps its link (its EOF record said so),
    // the caller parks those again and closes the others. Otherwise both links are closed already.
    // `relay` is the relay itself, for its counters (it may end inside start(), before the caller
    // holds it).
    using Done = std::function<void(const LinkEnd& end, const RecordRelay& relay, bool keep_a, bool keep_b)>;

    // `a` is the using vnet's link, `b` the serving vnet's. `prefix_to_a` (the route's LINK_OPENED)
    // goes to `a` right before the first bytes from `b`, so the using vnet wakes once for both;
    // `prefix_to_b` (the request and LINK_OK) goes to `b` at once, with whatever records of `a`'s
    // wait already (in `a`'s unread bytes or its socket). `tag`: the records' tag size (seal.hpp
    // tag_size). The pipe pool must outlive the relay. Bytes read past a direction's EOF record
    // (the using vnet's next LINK_OPEN) are left in that stream's `unread`.
    static std::shared_ptr<RecordRelay> start(StreamPtr a, StreamPtr b, PipePool& pipes, std::size_t tag, Bytes prefix_to_a,
                                              Bytes prefix_to_b, Done done);
    // Closes both links (the route is stopping, or a session went away).
    void abort(const std::string& why = "aborted");
    std::uint64_t bytes_a_to_b() const { return dir_[0].bytes; }
    std::uint64_t bytes_b_to_a() const { return dir_[1].bytes; }
    // The records' payload (their plaintext lengths, read from the headers the relay parses anyway):
    // what the two ends' users sent, without record headers and tags (per-serve traffic). A record
    // counts once its header is in.
    std::uint64_t payload_a_to_b() const { return dir_[0].payload; }
    std::uint64_t payload_b_to_a() const { return dir_[1].payload; }

private:
    struct Dir {
        Stream* from = nullptr;
        Stream* to = nullptr;
        std::size_t rest = 0;  // bytes of the current record not taken from `from` yet (0: at a header)
        bool last = false;     // the current record is the EOF record
        bool keep = false;     // ... and its sender keeps the link
        bool done = false;     // the EOF record went out
        bool bulk = false;     // the last record was large: peek headers and splice
        Pipe pipe;             // held only while it has bytes in it
        std::size_t in_pipe = 0;
        Bytes prefix;          // frames of the route's that go out first
        Bytes held;            // bytes read into userspace that `to` has not taken yet
        std::uint64_t bytes = 0;
        std::uint64_t payload = 0;  // plaintext lengths of the records whose header came in
        bool waited_write = false;
        std::array<std::uint8_t, 4> peek{};  // a record header (or one body byte) seen by the wait
        std::size_t peeked = 0;
        std::array<std::uint8_t, 4> hdr{};   // a header cut by a greedy read: its first bytes
        std::size_t hdrn = 0;
        // At a record header (or in a record) that the splice path takes: a bulk stream, no bytes
        // read ahead.
        bool splicing() const { return hdrn == 0 && from->unread.empty() && (rest == 0 ? bulk : rest >= kSpliceMin); }
        bool flushed() const { return prefix.empty() && held.empty() && in_pipe == 0; }
    };
    // Records from this size on are spliced; a greedy read takes up to kGreedy bytes.
    static constexpr std::size_t kSpliceMin = 16384;
    static constexpr std::size_t kGreedy = 16384;
    RecordRelay(StreamPtr a, StreamPtr b, PipePool& pipes, std::size_t tag, Done done);
    void wait_read(int d);
    void pull(int d);
    // One greedy read (or the bytes read ahead) sent on; false when the direction waits now.
    bool pull_greedy(int d, std::size_t& moved);
    // Walks record headers over `n` bytes taken from `from`; returns how many belong to this
    // direction's stream (all but what follows its EOF record). Throws WireError on a bad header.
    std::size_t scan(Dir& x, const std::uint8_t* p, std::size_t n);
    void push(int d);
    void finish(const LinkEnd& end);
    // A write to that side (0: a, 1: b) ever had to wait: Asio then keeps EPOLLOUT registered on it.
    bool waited_to_write(int side) const { return dir_[side == 0 ? 1 : 0].waited_write; }

    StreamPtr a_, b_;
    PipePool& pipes_;
    std::size_t tag_;
    Done done_;
    Dir dir_[2];
    bool finished_ = false;
};

}  // namespace tn::relay
