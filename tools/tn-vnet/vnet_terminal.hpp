// The interactive terminal of `terminal = true`: command lines from the TTY on stdin (the ctl grammar,
// `exit` stops the vnet), a prompt on stderr while it waits, and log lines kept off the prompt's line.
#pragma once

#include <string>

#include "vnet_agent.hpp"

namespace tn::vnet {

class Terminal {
public:
    // stdin must be a TTY (the caller checks: a pipe is never prompted, SPEC §2).
    Terminal(asio::io_context& io, VnetAgent& agent, const log::Logger& log);
    ~Terminal();  // detaches the prompt from the logger
    Terminal(const Terminal&) = delete;
    Terminal& operator=(const Terminal&) = delete;

    void start() { read_line(); }

private:
    void read_line();
    void show_prompt();

    asio::posix::stream_descriptor in_;
    asio::streambuf buf_{4096};
    VnetAgent& agent_;
    const log::Logger& log_;
    bool redraw_;        // stderr is a terminal: log lines erase and redraw the prompt
    std::string shown_;  // the prompt while it is on screen, empty while a command runs
};

}  // namespace tn::vnet
