// LinkPairing: the route's link bookkeeping as a pure core (doc/PROTOCOL.relay.md §7). It keeps the
// links that wait for their serving vnet (pending: budgets, deadlines, how each one ended) and every
// vnet's pre-opened links (parked ones wait for LINK_OPEN, standby ones for our LINK_REQUEST), with
// their caps. Events and `now` go in; what to do comes out (the pending links that ended and why, the
// pooled links to close) with the next deadline. No I/O and no clock: tn-route's runner owns the
// sockets and carries out the result. `Conn` names a pooled link (the runner's stream pointer; an int
// in the unit tests), `Payload` is what the runner keeps with a pending link.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace tn::relay {

// Who waits on the using side of a link: a vnet's link connection, a remote_port client, or an HTTP
// client of a vhost.
enum class UserKind : std::uint8_t { link, tcp, http, tls };

// Why a pending link ended without being paired.
enum class PendingEnd : std::uint8_t {
    serve_failed,  // LINK_FAIL: the serving vnet could not connect to its local service
    link_closed,   // the standby link the request went down closed before an answer
    protocol,      // a protocol error on the serving vnet's link
    timeout,       // the serving vnet did not answer in time
    serve_gone,    // the serving vnet's session ended
    shutdown,      // the route stops
};
// The log and error-page text of an end ("the serving vnet did not answer in time").
std::string_view describe(PendingEnd why);
// The status an HTTP client gets for it: 504 for a timeout, 502 otherwise.
int http_status(PendingEnd why);

// Which budget refuses one more pending link (none: it may wait).
enum class Refusal : std::uint8_t { none, route_full, group_full, serve_full, public_full, source_full };
// "too many pending links for serve 7", naming the refused link's group, serve or source.
std::string describe(Refusal why, std::string_view group, std::uint16_t id, std::string_view source);

struct PairingLimits {
    std::size_t pending_links = 256;              // the table; a group may take half of it, one serve a quarter
    std::size_t public_per_source = 16;           // pending public clients per address key (IPv6: per /64)
    std::size_t pooled = 32;                      // pre-opened links a vnet may add (parked + standby)
    std::size_t reparked = 128;                   // ... and with the reused ones the route parks again
    std::chrono::milliseconds link_wait{10000};   // a vnet's link waits this long for the serving side
    std::chrono::milliseconds public_wait{5000};  // a remote_port or vhost client, this long
};

// A pending link's identity for budgets and matching.
struct PendingKey {
    std::uint32_t serve_vnet = 0;
    std::uint16_t id = 0;  // the serve
    std::string group;
    UserKind kind = UserKind::link;
    std::string source;  // a public client's address key, for its budget
};

enum class PoolVerdict : std::uint8_t { pooled, full, no_vnet };

template <class Conn, class Payload>
class LinkPairing {
public:
    using Clock = std::chrono::steady_clock;
    struct Pending {
        PendingKey key;
        Payload data;
        Clock::time_point deadline;
    };
    struct Ended {
        std::uint64_t link_id;
        Pending pending;
        PendingEnd why;
    };
    // What a vnet's end leaves to the runner: its pooled links to close, its pending links that ended.
    struct Gone {
        std::vector<Conn> links;
        std::vector<Ended> ended;
    };

    explicit LinkPairing(PairingLimits limits = {}) : limits_(limits) {}
    const PairingLimits& limits() const { return limits_; }

    // --- pending links
    // Which budget (if any) refuses one more pending link like `k`. Budgets, so that nobody starves
    // the others: public clients share at most half of the table, one address a few slots of that; a
    // group at most half of the table and one serve a quarter, so a slow or flooded serve fails its
    // own clients only.
    Refusal admit(const PendingKey& k) const;
    // A fresh link id (also for a link bound at once, which never waits).
    std::uint64_t next_link_id() { return next_link_++; }
    // `link_id` waits for its serving vnet until now + the wait of its kind.
    void wait(std::uint64_t link_id, PendingKey k, Payload data, Clock::time_point now);
    const Pending* find(std::uint64_t link_id) const;
    // The serving vnet `from` answered (LINK_ACCEPT): the link leaves the table to be bound. Nothing
    // when the id is unknown or another vnet's.
    std::optional<Pending> pair(std::uint64_t link_id, std::uint32_t from);
    // The link ends unpaired for `why`; `from` (when given) must be its serving vnet.
    std::optional<Ended> end(std::uint64_t link_id, PendingEnd why, std::optional<std::uint32_t> from = std::nullopt);
    // The links whose deadline passed, ended with PendingEnd::timeout.
    std::vector<Ended> tick(Clock::time_point now);
    std::optional<Clock::time_point> next_deadline() const;
    std::size_t pending_count() const { return pending_.size(); }

    // --- vnets and their pre-opened links
    void vnet_up(std::uint32_t vnet) { pools_.try_emplace(vnet); }
    // The vnet's session ended: its pooled links are to be closed, its pending links end (serve_gone).
    Gone vnet_down(std::uint32_t vnet);
    // A pre-opened link of `vnet` (standby: waits for a request) joins its pool; `reparked` (a reused
    // link the route parks again) has the higher cap.
    PoolVerdict pool(std::uint32_t vnet, Conn c, bool standby, bool reparked);
    // The link leaves the pool (its LINK_OPEN came, or it closed); false when it was not in it.
    bool unpool(std::uint32_t vnet, const Conn& c);
    bool pooled(std::uint32_t vnet, const Conn& c) const;
    // The oldest standby link of `vnet` that `usable` accepts, taken out of the pool (the ones it
    // refuses are dropped on the way).
    template <class Usable>
    std::optional<Conn> take_standby(std::uint32_t vnet, Usable usable);
    // A reused link may go back to the vnet's pool: its session is up and the pool has room.
    bool can_repark(std::uint32_t vnet) const;
    std::size_t pool_size(std::uint32_t vnet) const;
    std::size_t standby_size(std::uint32_t vnet) const;

    // The route stops: every pending link ends (shutdown) and every pool is emptied.
    Gone stop();

private:
    struct Pool {
        std::set<Conn> all;
        std::deque<Conn> standby;  // the subset not yet asked, oldest first
    };
    PairingLimits limits_;
    std::uint64_t next_link_ = 1;
    std::map<std::uint64_t, Pending> pending_;
    std::map<std::uint32_t, Pool> pools_;
};

template <class Conn, class Payload>
Refusal LinkPairing<Conn, Payload>::admit(const PendingKey& k) const {
    const auto total = limits_.pending_links;
    std::size_t in_group = 0, in_serve = 0, in_public = 0, from_source = 0;
    for (const auto& [lid, p] : pending_) {
        if (p.key.group == k.group) {
            ++in_group;
            if (p.key.id == k.id) ++in_serve;
        }
        if (p.key.kind != UserKind::link) {
            ++in_public;
            if (p.key.source == k.source) ++from_source;
        }
    }
    if (pending_.size() >= total) return Refusal::route_full;
    if (in_group >= total / 2) return Refusal::group_full;
    if (in_serve >= total / 4) return Refusal::serve_full;
    if (k.kind != UserKind::link) {
        if (in_public >= total / 2) return Refusal::public_full;
        if (from_source >= limits_.public_per_source) return Refusal::source_full;
    }
    return Refusal::none;
}

template <class Conn, class Payload>
void LinkPairing<Conn, Payload>::wait(std::uint64_t link_id, PendingKey k, Payload data, Clock::time_point now) {
    // A public client waits less: its serving vnet must connect to the local service in that time.
    auto wait = k.kind == UserKind::link ? limits_.link_wait : limits_.public_wait;
    pending_[link_id] = Pending{std::move(k), std::move(data), now + wait};
}

template <class Conn, class Payload>
auto LinkPairing<Conn, Payload>::find(std::uint64_t link_id) const -> const Pending* {
    auto it = pending_.find(link_id);
    return it == pending_.end() ? nullptr : &it->second;
}

template <class Conn, class Payload>
auto LinkPairing<Conn, Payload>::pair(std::uint64_t link_id, std::uint32_t from) -> std::optional<Pending> {
    auto it = pending_.find(link_id);
    if (it == pending_.end() || it->second.key.serve_vnet != from) return std::nullopt;
    auto p = std::move(it->second);
    pending_.erase(it);
    return p;
}

template <class Conn, class Payload>
auto LinkPairing<Conn, Payload>::end(std::uint64_t link_id, PendingEnd why, std::optional<std::uint32_t> from)
    -> std::optional<Ended> {
    auto it = pending_.find(link_id);
    if (it == pending_.end() || (from && it->second.key.serve_vnet != *from)) return std::nullopt;
    Ended e{link_id, std::move(it->second), why};
    pending_.erase(it);
    return e;
}

template <class Conn, class Payload>
auto LinkPairing<Conn, Payload>::tick(Clock::time_point now) -> std::vector<Ended> {
    std::vector<Ended> out;
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second.deadline < now) {
            out.push_back(Ended{it->first, std::move(it->second), PendingEnd::timeout});
            it = pending_.erase(it);
        } else {
            ++it;
        }
    }
    return out;
}

template <class Conn, class Payload>
auto LinkPairing<Conn, Payload>::next_deadline() const -> std::optional<Clock::time_point> {
    std::optional<Clock::time_point> next;
    for (const auto& [id, p] : pending_)
        if (!next || p.deadline < *next) next = p.deadline;
    return next;
}

template <class Conn, class Payload>
auto LinkPairing<Conn, Payload>::vnet_down(std::uint32_t vnet) -> Gone {
    Gone g;
    if (auto it = pools_.find(vnet); it != pools_.end()) {
        g.links.assign(it->second.all.begin(), it->second.all.end());
        pools_.erase(it);
    }
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second.key.serve_vnet == vnet) {
            g.ended.push_back(Ended{it->first, std::move(it->second), PendingEnd::serve_gone});
            it = pending_.erase(it);
        } else {
            ++it;
        }
    }
    return g;
}

template <class Conn, class Payload>
PoolVerdict LinkPairing<Conn, Payload>::pool(std::uint32_t vnet, Conn c, bool standby, bool reparked) {
    auto it = pools_.find(vnet);
    if (it == pools_.end()) return PoolVerdict::no_vnet;
    auto& p = it->second;
    if (p.all.size() >= (reparked ? limits_.reparked : limits_.pooled)) return PoolVerdict::full;
    if (standby) p.standby.push_back(c);
    p.all.insert(std::move(c));
    return PoolVerdict::pooled;
}

template <class Conn, class Payload>
bool LinkPairing<Conn, Payload>::unpool(std::uint32_t vnet, const Conn& c) {
    auto it = pools_.find(vnet);
    if (it == pools_.end() || !it->second.all.erase(c)) return false;
    auto& sb = it->second.standby;
    if (auto s = std::find(sb.begin(), sb.end(), c); s != sb.end()) sb.erase(s);
    return true;
}

template <class Conn, class Payload>
bool LinkPairing<Conn, Payload>::pooled(std::uint32_t vnet, const Conn& c) const {
    auto it = pools_.find(vnet);
    return it != pools_.end() && it->second.all.count(c) != 0;
}

template <class Conn, class Payload>
template <class Usable>
std::optional<Conn> LinkPairing<Conn, Payload>::take_standby(std::uint32_t vnet, Usable usable) {
    auto it = pools_.find(vnet);
    if (it == pools_.end()) return std::nullopt;
    auto& p = it->second;
    while (!p.standby.empty()) {
        Conn c = p.standby.front();
        p.standby.pop_front();
        p.all.erase(c);
        if (usable(c)) return c;
    }
    return std::nullopt;
}

template <class Conn, class Payload>
bool LinkPairing<Conn, Payload>::can_repark(std::uint32_t vnet) const {
    auto it = pools_.find(vnet);
    return it != pools_.end() && it->second.all.size() < limits_.reparked;
}

template <class Conn, class Payload>
std::size_t LinkPairing<Conn, Payload>::pool_size(std::uint32_t vnet) const {
    auto it = pools_.find(vnet);
    return it == pools_.end() ? 0 : it->second.all.size();
}

template <class Conn, class Payload>
std::size_t LinkPairing<Conn, Payload>::standby_size(std::uint32_t vnet) const {
    auto it = pools_.find(vnet);
    return it == pools_.end() ? 0 : it->second.standby.size();
}

template <class Conn, class Payload>
auto LinkPairing<Conn, Payload>::stop() -> Gone {
    Gone g;
    for (auto& [vnet, p] : pools_) g.links.insert(g.links.end(), p.all.begin(), p.all.end());
    pools_.clear();
    for (auto& [id, p] : pending_) g.ended.push_back(Ended{id, std::move(p), PendingEnd::shutdown});
    pending_.clear();
    return g;
}

}  // namespace tn::relay
