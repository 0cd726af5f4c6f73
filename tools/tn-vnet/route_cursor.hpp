// Which route of [route] address a vnet tries next (tn-vnet(1), Failover): a pure core, no I/O or
// clock; the agent asks it after each failed attempt and each ended session and waits as it says.
#pragma once

#include <cstddef>
#include <optional>

namespace tn::vnet {

class RouteCursor {
public:
    // What to wait before the next attempt on current(): a short jittered pause (the next address of
    // a round), or the capped backoff (a whole round failed).
    enum class Wait { hop, backoff };

    explicit RouteCursor(std::size_t n) : n_(n ? n : 1) { restart(); }
    std::size_t current() const { return idx_; }
    std::size_t size() const { return n_; }

    // A new round in list order: at start, after a failed round, after a reload that must reconnect.
    void restart() {
        idx_ = 0;
        left_ = n_ - 1;
    }
    // The attempt on current() failed before the route welcomed us: the round goes on, or it is over
    // and the next one starts from the first address after the backoff.
    Wait attempt_failed() {
        if (left_ > 0) {
            --left_;
            idx_ = (idx_ + 1) % n_;
            return Wait::hop;
        }
        restart();
        return Wait::backoff;
    }
    // The session on current() ended: the next address at once, and the one just lost only after all
    // the others (it has just failed). With one address there is nothing to move to: the backoff.
    Wait session_lost() {
        if (n_ == 1) {
            restart();
            return Wait::backoff;
        }
        idx_ = (idx_ + 1) % n_;
        left_ = n_ - 2;
        return Wait::hop;
    }
    // The list now has n addresses; `kept` is current()'s place in it, none when it left the list
    // (then a new round from the top).
    void relist(std::size_t n, std::optional<std::size_t> kept) {
        n_ = n ? n : 1;
        if (!kept || *kept >= n_) return restart();
        idx_ = *kept;
        if (left_ > n_ - 1) left_ = n_ - 1;
    }

private:
    std::size_t n_;
    std::size_t idx_ = 0;
    std::size_t left_ = 0;  // addresses of this round still to try after current()
};

}  // namespace tn::vnet
