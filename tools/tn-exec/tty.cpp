// Raw mode and window size of the local terminal.
#include "tty.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

namespace tn::exec {

RawTerminal::RawTerminal(int fd) : fd_(fd) {
    termios t{};
    if (::isatty(fd) != 1 || ::tcgetattr(fd, &t) != 0) return;
    saved_ = t;
    ::cfmakeraw(&t);
    // Keystrokes such as Ctrl-C travel to the remote PTY as bytes, where its line discipline acts on them.
    ::tcsetattr(fd, TCSADRAIN, &t);
}

RawTerminal::~RawTerminal() {
    if (saved_) ::tcsetattr(fd_, TCSADRAIN, &*saved_);
}

std::pair<int, int> window_size(int fd) {
    winsize w{};
    if (::ioctl(fd, TIOCGWINSZ, &w) != 0 || w.ws_col == 0 || w.ws_row == 0) return {80, 24};
    return {w.ws_col, w.ws_row};
}

}  // namespace tn::exec
