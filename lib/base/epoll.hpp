// Epoll: an owned epoll instance for the single-threaded event loops (tn-tun's client and server):
// level-triggered readiness of a few descriptors, each reported by its fd.
#pragma once

#include <sys/epoll.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <span>
#include <string>

#include "base/error.hpp"
#include "base/unique_fd.hpp"

namespace tn {

class Epoll {
public:
    Epoll() : fd_(::epoll_create1(EPOLL_CLOEXEC)) {
        if (!fd_) throw Error(ExitCode::io, std::string("epoll_create1: ") + std::strerror(errno));
    }

    // Watches `fd` for input (level-triggered). Throws tn::Error(io) when the kernel refuses.
    void add(int fd) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (::epoll_ctl(fd_.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
            throw Error(ExitCode::io, std::string("epoll_ctl: ") + std::strerror(errno));
    }

    // The descriptors ready within `timeout_ms` (-1: no limit); empty on timeout or a signal.
    std::span<const epoll_event> wait(int timeout_ms) {
        int n = ::epoll_wait(fd_.get(), evs_.data(), static_cast<int>(evs_.size()), timeout_ms);
        return {evs_.data(), n < 0 ? 0u : static_cast<std::size_t>(n)};
    }

private:
    UniqueFd fd_;
    std::array<epoll_event, 8> evs_{};
};

}  // namespace tn
