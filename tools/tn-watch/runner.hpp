// The supervisor process: one loop over a signalfd, the child's pipes and the next deadline.
#pragma once

#include <string>

#include "base/log.hpp"
#include "options.hpp"

namespace tn::watch {

// How a detached supervisor tells the waiting `start`/`ensure` that it is up, busy or failed.
// A no-op when fd is -1 (foreground `run`).
class Ready {
public:
    explicit Ready(int fd = -1) : fd_(fd) {}
    ~Ready();
    Ready(const Ready&) = delete;
    Ready& operator=(const Ready&) = delete;
    void ok(long pid);
    void busy();
    void fail(int code, const std::string& msg);

private:
    void send(const std::string& s);
    int fd_;
};

// Supervises plan.command until stopped or the policy gives up; returns the exit code.
// `detached`: stdio goes to the log file and child lines are not echoed.
int supervise(const RunPlan& plan, bool detached, Ready& ready, const log::Logger& log);

}  // namespace tn::watch
