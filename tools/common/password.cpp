// Password input from stdin or the controlling terminal.
#include "common/password.hpp"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <iostream>

#include "base/error.hpp"
#include "base/unique_fd.hpp"

namespace tn::cli {

Secret read_password_stdin() {
    std::string line;
    if (!std::getline(std::cin, line) && line.empty())
        throw Error(ExitCode::data, "--password-stdin: nothing on standard input");
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return Secret(std::move(line));
}

std::optional<Secret> prompt_password_tty(const std::string& prompt) {
    if (!::isatty(STDIN_FILENO)) return std::nullopt;
    UniqueFd tty(::open("/dev/tty", O_RDWR | O_CLOEXEC));
    if (!tty) return std::nullopt;
    termios old{};
    if (::tcgetattr(tty.get(), &old) != 0) return std::nullopt;
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(tty.get(), TCSAFLUSH, &quiet);
    [[maybe_unused]] auto w = ::write(tty.get(), prompt.data(), prompt.size());
    std::string pw;
    char c = 0;
    while (::read(tty.get(), &c, 1) == 1 && c != '\n' && c != '\r' && pw.size() < 4096) pw += c;
    ::tcsetattr(tty.get(), TCSAFLUSH, &old);
    w = ::write(tty.get(), "\n", 1);
    return Secret(std::move(pw));
}

}  // namespace tn::cli
