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
    // A new connection from `source`. Over the per-source cap it is refused. When the gate is full,
    // the oldest entry of the biggest other source makes room if that source would still hold more
    // than `source` (a flood from a few addresses cannot keep a new address out); else the oldest
    // entry that has sent nothing yet, if it is idle, else the oldest of all, if it is slow (a flood
    // of silent connections from many addresses cannot keep a client out that speaks at once, and it
    // churns no faster than its own connections age); else the newcomer is refused.
    Admit admit(const std::string& source, Clock::time_point now);
    // The entry's peer sent its first bytes: from now on only `slow` can push it out.
    void progressed(std::uint64_t id) { idle_.erase(id); }
    // The entry finished setup or closed (unknown ids are ignored: an evicted entry calls it too).
    void done(std::uint64_t id);
    // The entry to close when the process runs out of descriptors (oldest of the biggest source).
    std::optional<std::uint64_t> victim() const;
    std::size_t size() const { return sources_of_.size(); }
    std::size_t from(const std::string& source) const;
    const SetupCaps& caps() const { return caps_; }

private:
    std::optional<std::uint64_t> victim_besides(const std::string* source, std::size_t at_least) const;
    SetupCaps caps_;
    std::uint64_t next_ = 1;
    struct Entry {
        std::string source;
        Clock::time_point since;
    };
    std::map<std::uint64_t, Entry> sources_of_;  // by id: oldest first
    std::map<std::string, std::deque<std::uint64_t>> by_source_;  // ids oldest first
    std::set<std::uint64_t> idle_;                                  // entries whose peer sent nothing yet
};

}  // namespace tn::relay
