// SignalFd: SIGINT/SIGTERM/SIGHUP (or any set) delivered as a readable fd, for poll-based loops.
// Asio-based tools use asio::signal_set instead; this is for the synchronous ones.
#pragma once

#include <signal.h>

#include <initializer_list>
#include <optional>

#include "base/unique_fd.hpp"

namespace tn {

class SignalFd {
public:
    // Blocks the signals in the calling thread (call before starting threads) and opens a signalfd.
    explicit SignalFd(std::initializer_list<int> signals = {SIGINT, SIGTERM, SIGHUP});
    ~SignalFd();
    SignalFd(const SignalFd&) = delete;
    SignalFd& operator=(const SignalFd&) = delete;

    int fd() const { return fd_.get(); }
    // The next pending signal, or nullopt if none is pending (never blocks).
    std::optional<int> take();

private:
    sigset_t set_{};
    sigset_t old_{};
    UniqueFd fd_;
};

}  // namespace tn
