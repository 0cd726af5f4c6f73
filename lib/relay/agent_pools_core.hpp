// AgentPools: a vnet's pools of pre-opened links as a pure core, the agent's side of what LinkPairing
// keeps at the route (doc/PROTOCOL.relay.md §7). Parked links wait for a local connection of a use
// (the next LINK_OPEN goes down one); standby links wait for the route's LINK_REQUEST for a serve.
// It counts what is pooled and what is being opened, says how many to open and whether a link that
// finished a stream is kept, and drops everything of an older control session (its generation). No
// I/O: tn-vnet's runner opens, closes and reads the links. `Link` names one (the runner's stream
// pointer; an int in the unit tests).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace tn::relay {

enum class PoolKind : std::uint8_t { parked, standby };

template <class Link>
class AgentPools {
public:
    // `target`: [vnet] link_pool of each kind (0: no pools). `max_idle`: the most idle links of a kind
    // ever kept (the route keeps at most 32 new pre-opened links per vnet).
    explicit AgentPools(std::size_t target, std::size_t max_idle = 32) : target_(target), max_idle_(max_idle) {}

    // The generation links opened or reused now belong to; drop() starts a new one.
    std::uint64_t generation() const { return gen_; }
    bool current(std::uint64_t gen) const { return gen == gen_; }

    // How many more of `kind` to open now: up to `target`, counting those being opened, and none
    // when nothing wants them (no use listens, no serve is registered) or the session is down.
    std::size_t to_open(PoolKind kind, bool wanted) const {
        if (!wanted) return 0;
        auto have = idle(kind) + opening(kind);
        return have < target_ ? target_ - have : 0;
    }
    // An attempt to open one of `kind` starts; its result comes back with opened() or open_failed().
    void start_open(PoolKind kind) { ++side(kind).opening; }
    void open_failed(PoolKind kind) { dec(side(kind).opening); }
    // The attempt of generation `gen` gave `l`: pooled (true), or false when `gen` is over (the
    // session ended meanwhile: the caller closes it).
    bool opened(PoolKind kind, std::uint64_t gen, Link l) {
        dec(side(kind).opening);
        return add(kind, gen, std::move(l));
    }
    // A link we said we keep (will_keep) finished its stream: back in the pool, or false when its
    // generation is over (the caller closes it).
    bool reuse(PoolKind kind, std::uint64_t gen, Link l) { return add(kind, gen, std::move(l)); }

    // The oldest parked link for a new local connection, if any (the caller checks that it is still
    // alive and asks again if not).
    std::optional<Link> take_parked() {
        auto& q = side(PoolKind::parked).idle;
        if (q.empty()) return std::nullopt;
        Link l = std::move(q.front());
        q.pop_front();
        return l;
    }
    // A standby link left the pool (the route's request came down it, or it closed): true if it was there.
    bool remove_standby(const Link& l) {
        auto& q = side(PoolKind::standby).idle;
        auto it = std::find(q.begin(), q.end(), l);
        if (it == q.end()) return false;
        q.erase(it);
        return true;
    }

    // Whether a link of `kind` and generation `gen` that is about to end its stream is kept: twice the
    // pool, plus as many as carry connections of that kind now (`busy`), so under load every link
    // that comes back spares a new connect; never more than `max_idle` idle.
    bool will_keep(PoolKind kind, std::uint64_t gen, std::size_t busy) const {
        if (gen != gen_ || target_ == 0) return false;
        return idle(kind) + opening(kind) < std::min(max_idle_, 2 * target_ + busy);
    }

    // The control session ended (or the pool size changed): a new generation; every pooled link is
    // returned for the caller to close, and attempts and reuses of the old one are refused.
    std::vector<Link> drop() {
        ++gen_;
        std::vector<Link> out;
        for (auto* s : {&parked_, &standby_}) {
            for (auto& l : s->idle) out.push_back(std::move(l));
            s->idle.clear();
        }
        return out;
    }
    void set_target(std::size_t target) { target_ = target; }

    std::size_t idle(PoolKind kind) const { return side(kind).idle.size(); }
    std::size_t opening(PoolKind kind) const { return side(kind).opening; }

private:
    struct Side {
        std::deque<Link> idle;
        std::size_t opening = 0;
    };
    Side& side(PoolKind k) { return k == PoolKind::parked ? parked_ : standby_; }
    const Side& side(PoolKind k) const { return k == PoolKind::parked ? parked_ : standby_; }
    static void dec(std::size_t& n) {
        if (n) --n;
    }
    bool add(PoolKind kind, std::uint64_t gen, Link l) {
        if (gen != gen_) return false;
        side(kind).idle.push_back(std::move(l));
        return true;
    }

    std::size_t target_, max_idle_;
    std::uint64_t gen_ = 0;
    Side parked_, standby_;
};

}  // namespace tn::relay
