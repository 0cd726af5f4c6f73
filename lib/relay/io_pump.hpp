// Pump: moves one proxied connection's bytes between a local TCP stream and a link, both ways, with
// backpressure (a side is read only when the previous chunk was written) and half-close. The link
// side has a LinkSeal (seal.hpp): what goes to it is sealed into records (in clear ones with
// Cipher::none), what comes from it is opened, and its half-close is the EOF record (a FIN without
// one is a truncation). Copying through userspace here measured faster than splice(2) on plain
// links (bench/relay/README.md); the route splices the records between two links.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "relay/io_stream.hpp"
#include "relay/link_end.hpp"
#include "relay/seal.hpp"

namespace tn::relay {

// Pump buffers (64-128 KiB) come and go with every sealed connection. With glibc's defaults each free
// trims the heap (brk) and the next malloc faults the pages in again, with a TLB shootdown each time
// (perf: the largest single cost of a vnet at 450 new connections/s). Called once by each tool before
// its event loop: freed buffers stay mapped (up to 8 MiB) for the next connection.
void keep_freed_buffers();

class Pump : public std::enable_shared_from_this<Pump> {
public:
    // Called once when both directions ended or one failed: how (clean, or the fault: a bad record,
    // a sealed link that closed without its EOF record, a socket error, an abort).
    using Done = std::function<void(const LinkEnd& end, std::uint64_t a_to_b, std::uint64_t b_to_a)>;

    // `seal_a`/`seal_b`: that side is the link (at most one of them).
    // `keep_sealed`: asked when the sealed side's EOF record goes out; true promises (in the record)
    // that after a clean end the link is left open for the caller to reuse. Either way that side's
    // end is the EOF record alone; a link not kept is closed when the pump ends.
    // `held` (0: a->b, 1: b->a) is not read until resume(held): the caller still has a frame to read
    // from that side first (a using vnet sends at once and reads the route's LINK_OPENED meanwhile).
    static std::shared_ptr<Pump> start(StreamPtr a, StreamPtr b, Done done, std::unique_ptr<LinkSeal> seal_a = nullptr,
                                       std::unique_ptr<LinkSeal> seal_b = nullptr, std::function<bool()> keep_sealed = nullptr,
                                       int held = -1);
    void resume(int d);
    // Ends the pump with `why`; `reset_local` resets the unsealed side(s) so their peer sees an abort.
    void abort(const std::string& why = "aborted", bool reset_local = false);
    std::uint64_t bytes_a_to_b() const { return dir_[0].bytes; }
    std::uint64_t bytes_b_to_a() const { return dir_[1].bytes; }
    // The link's other end said in its EOF record that it keeps the link. Where that end is the peer
    // itself (the route as the using end of a remote_port or vhost link), the link carries another
    // connection only if both kept it.
    bool peer_kept() const { return peer_kept_; }
    // While no direction holds bytes (each waits for its next read, or is done), frees the seal's
    // AEAD contexts (RecordCipher::trim: ~2.3 KiB of OpenSSL state per sealed connection); the next
    // record builds its direction's again. Returns whether it trimmed. For an owner's periodic sweep:
    // a busy connection pays one rebuild per direction per sweep at most.
    bool trim_if_idle();

private:
    struct Dir {
        Stream* from = nullptr;
        Stream* to = nullptr;
        RecordOpener* open = nullptr;  // `from` is sealed
        RecordSealer* seal = nullptr;  // `to` is sealed
        // Allocated only while bytes flow, so an idle connection holds no data buffer.
        std::unique_ptr<std::uint8_t[]> in;
        std::size_t have = 0;  // bytes in `in` (a partial record stays here between reads)
        std::size_t consumed = 0;  // opened records at the front of `in`, dropped once written
        std::array<iovec, 8> iov{};  // what write() sends: pieces of `in`
        std::size_t iovn = 0, iovi = 0;
        std::uint64_t bytes = 0;
        bool done = false;
        bool drained = false;  // the last read left the socket empty
        std::array<std::uint8_t, kRecordOverhead> eof_rec{};
        int lowat = 1;  // SO_RCVLOWAT set on a sealed `from`
        int turns = 0;  // chunks moved since the last wait or yield
        std::size_t rec = kRecordMax;  // plaintext bytes per sealed record (`to` is sealed)
    };
    Pump(StreamPtr a, StreamPtr b, Done done);
    void read(int d);
    void try_read(int d);
    void set_lowat(Dir& x, int v);
    void process(int d, std::size_t n);
    void write(int d, bool then_eof);
    void compact(Dir& x);
    void eof(int d);
    void finish(const LinkEnd& end, bool reset_local = false);

    StreamPtr a_, b_;
    std::unique_ptr<LinkSeal> seal_a_, seal_b_;
    Done done_;
    Dir dir_[2];
    bool finished_ = false;
    std::function<bool()> keep_sealed_;
    bool kept_ = false;  // our EOF record promised to keep the link
    bool peer_kept_ = false;
};

// The pumps of an owner that keeps no other list of them (a vnet), for a periodic trim_if_idle()
// sweep. Held weakly: a pump still ends and goes on its own; the sweep forgets those that went.
class IdlePumps {
public:
    void add(const std::shared_ptr<Pump>& p) { pumps_.push_back(p); }
    // trim_if_idle() on each live pump; returns how many were idle.
    std::size_t trim();
    std::size_t size() const { return pumps_.size(); }

private:
    std::vector<std::weak_ptr<Pump>> pumps_;
};

}  // namespace tn::relay
