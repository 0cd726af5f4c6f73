// Per-vnet and per-serve traffic on tn-route (status, /api/status, the dashboard, /metrics): bytes
// each way, links and errors, labelled by group, vnet name and serve id. A pure book: the runner
// tells it when a link is bound, ends or fails to set up; open links' bytes stay in their pumps until
// they end (live() adds them for a report), so the relay's hot path pays nothing for it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

namespace tn::route {

struct Traffic {
    std::uint64_t bytes_in = 0;   // into the vnet (serve): what its users sent to it
    std::uint64_t bytes_out = 0;  // out of the vnet (serve): what it sent back
    std::uint64_t links = 0;      // links bound since the route started
    std::uint64_t open = 0;       // links relayed now
    std::uint64_t errors = 0;     // links that failed to set up or ended in an error
};

// One relayed link's ends as the book names them: the serving vnet and its serve, and the using vnet
// (empty when the route is the using end: remote_port, HTTP and HTTPS vhosts).
struct LinkTag {
    std::string group, serve_vnet, user_vnet;
    std::uint16_t serve = 0;
};

class TrafficBook {
public:
    using Key = std::pair<std::string, std::string>;  // group, vnet name
    struct Vnet {
        Traffic total;                             // everything the vnet carried, serving and using
        std::map<std::uint16_t, Traffic> serves;  // by serve id
        unsigned live = 0;                         // sessions with this name up (names need not be unique)
        std::uint64_t left = 0;                    // when it went down (order among departed vnets)
    };
    // Counters of vnets that went down are kept (a reconnect continues them, /metrics stays monotonic)
    // up to this many; the longest gone with no open link go first.
    static constexpr std::size_t kKeepDeparted = 256;

    void vnet_up(const Key& k) { ++book_[k].live; }
    void vnet_down(const Key& k);
    void opened(const LinkTag& t);
    // `in`: bytes from the using side to the serve; `out`: back.
    void closed(const LinkTag& t, std::uint64_t in, std::uint64_t out, bool error);
    void failed(const std::string& group, const std::string& serve_vnet, std::uint16_t serve);
    // An open link's bytes so far, added to a copy of the book for one report.
    static void live(std::map<Key, Vnet>& book, const LinkTag& t, std::uint64_t in, std::uint64_t out);
    const std::map<Key, Vnet>& all() const { return book_; }

private:
    void forget_departed();
    std::map<Key, Vnet> book_;
    std::uint64_t downs_ = 0;
};

}  // namespace tn::route
