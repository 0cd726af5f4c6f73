// Zero-copy relaying for plain links: splice(2) moves bytes socket -> pipe -> socket inside the
// kernel. Pipes come from a PipePool and go back as soon as they are empty, so an idle connection
// holds no pipe (two fds and a kernel buffer each would otherwise cap how many links a route keeps).
#pragma once

#include <cstddef>
#include <vector>

#include "base/unique_fd.hpp"

namespace tn::relay {

inline constexpr std::size_t kPipeSize = 1 << 20;

struct Pipe {
    UniqueFd r, w;
    explicit operator bool() const { return r.valid() && w.valid(); }
};

class PipePool {
public:
    explicit PipePool(std::size_t keep = 64) : keep_(keep) {}
    // An empty pipe, or an invalid one when pipe2() fails (the caller then copies through userspace).
    Pipe take();
    // Takes back an empty pipe; beyond `keep` idle pipes it is closed.
    void give(Pipe p);
    std::size_t idle() const { return free_.size(); }

private:
    std::size_t keep_;
    std::vector<Pipe> free_;
};

}  // namespace tn::relay
