// SetupGate: per-source and global caps on connections in setup, with fair-share eviction.
#include "relay/setup_gate.hpp"

#include <sys/resource.h>

#include <algorithm>

namespace tn::relay {

SetupCaps SetupCaps::for_fd_limit(std::uint64_t nofile) {
    SetupCaps c;
    c.global = static_cast<std::size_t>(std::clamp<std::uint64_t>(nofile / 4, 16, 1024));
    // Half of that per source: a vnet opening many links at once (a burst of new proxied connections)
    // must fit, and so must the vnets behind one NAT address.
    c.per_source = std::clamp<std::size_t>(c.global / 2, 8, 512);
    // A quarter of the slots at work at once: 256 handshakes queue ~0.4 s of the route's work
    // (~1.5 ms of CPU each with registration, bench/relay/SCALE.md), well inside the 5 s setup
    // deadline, and still cover the round trips of far clients (256 per 0.2 s is more than one core
    // registers).
    c.window = std::clamp<std::size_t>(c.global / 4, 4, 256);
    return c;
}

std::uint64_t fd_limit() {
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return 1024;
    return r.rlim_cur;
}

std::size_t SetupGate::from(const std::string& source) const {
    auto it = by_source_.find(source);
    return it == by_source_.end() ? 0 : it->second.size();
}

std::optional<std::uint64_t> SetupGate::victim_besides(const std::string* source, std::size_t at_least,
                                                      bool silent_only) const {
    // The biggest source (ties: the one whose oldest counted entry is oldest), if it holds at least
    // `at_least` counted entries.
    std::optional<std::uint64_t> best;
    std::size_t best_n = 0;
    for (const auto& [src, ids] : by_source_) {
        if (source && src == *source) continue;
        std::size_t n = 0;
        std::optional<std::uint64_t> oldest;
        for (auto id : ids) {
            if (silent_only && !idle_.count(id)) continue;
            if (!oldest) oldest = id;
            ++n;
        }
        if (!oldest || n < at_least) continue;
        if (!best || n > best_n || (n == best_n && *oldest < *best)) {
            best = oldest;
            best_n = n;
        }
    }
    return best;
}

std::optional<std::uint64_t> SetupGate::victim() const {
    if (auto v = victim_besides(nullptr, 1, true)) return v;
    return victim_besides(nullptr, 1);
}

std::optional<std::uint64_t> SetupGate::make_room(const std::string& source, std::size_t mine, Clock::time_point now,
                                                  bool speaking) const {
    // Sources at equal shares never push each other out (no churn), and while the gate holds fewer
    // sources than entries, some source holds two or more: a new address always gets in.
    std::optional<std::uint64_t> v;
    if (speaking) {
        if (!idle_.empty()) return *idle_.begin();
        v = victim_besides(&source, mine + 2);
    } else {
        v = victim_besides(&source, mine + 2, true);
        if (!v && !idle_.empty() && now - sources_of_.at(*idle_.begin()).since >= caps_.idle) v = *idle_.begin();
    }
    if (!v && now - sources_of_.begin()->second.since >= caps_.slow) v = sources_of_.begin()->first;
    return v;
}

SetupGate::Admit SetupGate::admit(const std::string& source, Clock::time_point now, bool speaking) {
    // Here too, not only in window_open(): a gate whose listener never asks (the HTTP heads') would
    // otherwise keep every id it ever queued.
    expire_window(now);
    Admit a;
    auto mine = from(source);
    if (mine >= caps_.per_source) return a;
    if (size() >= caps_.global) {
        a.evict = make_room(source, mine, now, speaking);
        if (!a.evict) return a;
        done(*a.evict);
    }
    auto id = next_++;
    auto& e = sources_of_[id] = Entry{source, now};
    if (!speaking) idle_.insert(id);
    by_source_[source].push_back(id);
    // Only a speaking newcomer is at work (a silent one costs nothing until it speaks), and only
    // within its source's share.
    auto share = std::max<std::size_t>(1, caps_.window / 8);
    if (auto w = at_work_from_.find(source); speaking && (w == at_work_from_.end() || w->second < share)) {
        e.at_work = true;
        ++at_work_from_[source];
        ++at_work_;
        window_.push_back(id);
    }
    a.id = id;
    return a;
}

void SetupGate::leave_window(Entry& e) {
    if (!e.at_work) return;
    e.at_work = false;
    --at_work_;
    if (auto it = at_work_from_.find(e.source); it != at_work_from_.end() && --it->second == 0) at_work_from_.erase(it);
}

void SetupGate::expire_window(Clock::time_point now) {
    while (!window_.empty()) {
        auto it = sources_of_.find(window_.front());
        if (it != sources_of_.end() && it->second.at_work) {
            if (now - it->second.since < caps_.slow) break;
            leave_window(it->second);  // slow: it keeps its slot, not its place in the window
        }
        window_.pop_front();
    }
}

bool SetupGate::window_open(Clock::time_point now) {
    expire_window(now);
    return at_work_ < caps_.window;
}

std::optional<SetupGate::Clock::time_point> SetupGate::window_moves_at() const {
    for (auto id : window_)
        if (auto it = sources_of_.find(id); it != sources_of_.end() && it->second.at_work) return it->second.since + caps_.slow;
    return std::nullopt;
}

void SetupGate::done(std::uint64_t id) {
    auto it = sources_of_.find(id);
    if (it == sources_of_.end()) return;
    auto bs = by_source_.find(it->second.source);
    auto& ids = bs->second;
    ids.erase(std::find(ids.begin(), ids.end(), id));
    if (ids.empty()) by_source_.erase(bs);
    leave_window(it->second);
    sources_of_.erase(it);
    idle_.erase(id);
}

}  // namespace tn::relay
