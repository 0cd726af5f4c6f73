// SetupGate: bounds the connections a listener holds before they have proven anything (TLS and hello
// not done, HTTP head not in), in all and per source address, so that half-open connections
// (slowloris) from a few addresses cannot take every file descriptor or every slot. Pure: no I/O.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>

namespace tn::relay {

// The two caps for a process allowed `nofile` descriptors: a quarter of them for connections in
// setup (16..1024), and half of that per source (8..512).
struct SetupCaps {
    std::size_t global = 256, per_source = 32;
    // A connection that sent nothing for this long is idle; one in setup for `slow` is slow (a
    // handshake takes milliseconds, a few round trips at most). When no source holds more than its
    // share, the oldest idle one, else the oldest slow one, makes room for a newcomer.
    std::chrono::steady_clock::duration idle = std::chrono::milliseconds(250);
    std::chrono::steady_clock::duration slow = std::chrono::seconds(2);
    // The handshake window: how many entries may be at work at once (they spoke on arrival and are not
    // slow yet), no source counting for more than an eighth of it. A listener that finds the window
    // full stops accepting until an entry leaves it, so a wave of reconnects waits in the kernel's
    // listen queue, which costs the process nothing, instead of being accepted into handshakes the
    // process cannot finish in time and then evicted or timed out (HAProxy's maxconn and maxsslrate
    // pause a listener the same way).
    std::size_t window = 64;
    static SetupCaps for_fd_limit(std::uint64_t nofile);
};
// The process's RLIMIT_NOFILE soft limit (1024 when it cannot be read).
std::uint64_t fd_limit();

class SetupGate {
public:
    explicit SetupGate(SetupCaps caps) : caps_(caps) {}
    struct Admit {
        std::optional<std::uint64_t> id;     // the new entry; none: refuse the connection
        std::optional<std::uint64_t> evict;  // an entry to close to make room for it
    };
    using Clock = std::chrono::steady_clock;
    // A new connection from `source`; `speaking`: its first bytes are already in (a real client's
    // ClientHello, hello or request head comes with its handshake; a half-open flood sends nothing).
    // Over the per-source cap it is refused. When the gate is full, room is made by pushing out:
    //  - for a speaking newcomer: the oldest entry that has sent nothing yet, whatever its age (silent
    //    connections never keep a speaking client out); else the oldest entry of the biggest other
    //    source, if that source would still hold more than `source` (a flood from a few addresses
    //    cannot keep a new address out); else the oldest of all, if it is slow;
    //  - for a silent newcomer: only what is silent or slow: the oldest silent entry of the source
    //    with the most silent entries, if it would still hold more than `source`; else the oldest
    //    silent entry, if it is idle; else the oldest of all, if it is slow. So a flood of silent
    //    connections churns only among its own kind, no faster than they age, and never pushes out a
    //    client that spoke (before, one from an address holding two setups, as a vnet's control
    //    connection and its first link do, was pushed out by the flood's next connection).
    // Else the newcomer is refused.
    Admit admit(const std::string& source, Clock::time_point now, bool speaking = false);
    // The entry's peer sent its first bytes: from now on only `slow` can push it out.
    void progressed(std::uint64_t id) { idle_.erase(id); }
    // The entry finished setup or closed (unknown ids are ignored: an evicted entry calls it too).
    void done(std::uint64_t id);
    // The entry to close when the process runs out of descriptors: the oldest silent entry of the
    // source with the most silent entries, else the oldest entry of the biggest source.
    std::optional<std::uint64_t> victim() const;
    // Whether a listener may accept another connection now: fewer than caps().window entries at work.
    // An entry leaves the window when it is done or evicted, or when it turns slow: a peer that
    // stalls its handshake holds a place in the window for `slow` at most, and one address holds an
    // eighth of the window at most, so stalled handshakes pause the listener for `slow` at a time.
    bool window_open(Clock::time_point now);
    // When the oldest entry at work turns slow and leaves the window (none: the window is empty).
    std::optional<Clock::time_point> window_moves_at() const;
    std::size_t at_work() const { return at_work_; }
    std::size_t window_queue() const { return window_.size(); }  // ids queued in the window, stale ones included
    std::size_t size() const { return sources_of_.size(); }
    std::size_t from(const std::string& source) const;
    const SetupCaps& caps() const { return caps_; }

private:
    // The oldest entry (silent_only: the oldest silent entry) of the source other than `source` that
    // holds the most entries (silent_only: silent entries), if it holds at least `at_least`.
    std::optional<std::uint64_t> victim_besides(const std::string* source, std::size_t at_least, bool silent_only = false) const;
    std::optional<std::uint64_t> make_room(const std::string& source, std::size_t mine, Clock::time_point now, bool speaking) const;
    SetupCaps caps_;
    std::uint64_t next_ = 1;
    struct Entry {
        std::string source;
        Clock::time_point since;
        bool at_work = false;  // counted in the window
    };
    void leave_window(Entry& e);
    // Drops the window's front entries that are done or slow (amortised O(1): those behind a young
    // one came after it, within `slow`).
    void expire_window(Clock::time_point now);
    std::map<std::uint64_t, Entry> sources_of_;  // by id: oldest first
    std::map<std::string, std::deque<std::uint64_t>> by_source_;  // ids oldest first
    std::set<std::uint64_t> idle_;                                  // entries whose peer sent nothing yet
    // The window: entries at work in the order they came (ids that left it early are skipped when
    // they reach the front), their count, and each source's share of it.
    std::deque<std::uint64_t> window_;
    std::size_t at_work_ = 0;
    std::map<std::string, std::size_t> at_work_from_;
};

}  // namespace tn::relay
