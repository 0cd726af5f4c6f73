// Turns SIGINT/SIGTERM/SIGHUP into a readable eventfd that every worker polls, so `run` can pass the
// signal on to the remote command instead of dying with it running on.
#pragma once

#include <atomic>
#include <string>
#include <thread>

#include "base/signals.hpp"
#include "base/unique_fd.hpp"

namespace tn::exec {

class Interrupts {
public:
    // Blocks the signals in this thread: create it before starting worker threads (they inherit it).
    Interrupts();
    ~Interrupts();
    Interrupts(const Interrupts&) = delete;
    Interrupts& operator=(const Interrupts&) = delete;

    int fd() const { return event_.get(); }  // readable (and stays so) once a signal arrived
    std::string signal_name() const;           // "INT", "TERM", "HUP"

private:
    SignalFd signals_;
    UniqueFd event_, stop_;
    std::atomic<int> signo_{0};
    std::thread watcher_;
};

}  // namespace tn::exec
