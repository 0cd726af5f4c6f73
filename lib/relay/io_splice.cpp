// The pipe pool behind splice(2) relaying (see io_splice.hpp).
#include "relay/io_splice.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace tn::relay {

Pipe PipePool::take() {
    if (!free_.empty()) {
        Pipe p = std::move(free_.back());
        free_.pop_back();
        return p;
    }
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return {};
    // A bigger pipe moves more per splice call (the default 64 KiB costs two syscalls per 64 KiB,
    // no better than read/write); best effort: the default works too.
    ::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(kPipeSize));
    return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void PipePool::give(Pipe p) {
    if (p && free_.size() < keep_) free_.push_back(std::move(p));
}

}  // namespace tn::relay
