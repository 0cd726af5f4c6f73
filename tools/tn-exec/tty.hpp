// run --tty: the local terminal in raw mode for the length of the command (restored by the destructor
// on every way out: normal end, error, SIGINT/SIGTERM/SIGHUP through Interrupts), and its size.
#pragma once

#include <termios.h>

#include <optional>
#include <utility>

namespace tn::exec {

class RawTerminal {
public:
    explicit RawTerminal(int fd);  // no-op when fd is not a terminal
    ~RawTerminal();
    RawTerminal(const RawTerminal&) = delete;
    RawTerminal& operator=(const RawTerminal&) = delete;

private:
    int fd_;
    std::optional<termios> saved_;
};

// (columns, rows) of the terminal on fd, or 80x24 when it is not one (as ssh -t without a TTY).
std::pair<int, int> window_size(int fd);

}  // namespace tn::exec
