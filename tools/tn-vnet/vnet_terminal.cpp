// The vnet terminal's read loop and prompt.
#include "vnet_terminal.hpp"

#include <unistd.h>

#include <iostream>
#include <istream>

#include "base/strings.hpp"

namespace tn::vnet {

namespace {
constexpr const char* prompt = ">: ";
}

Terminal::Terminal(asio::io_context& io, VnetAgent& agent, const log::Logger& log)
    : in_(io, ::dup(0)), agent_(agent), log_(log), redraw_(::isatty(2) == 1) {
    // Only on a terminal: escape sequences in a log file would be noise.
    if (redraw_) log_.keep_prompt(&shown_);
}

Terminal::~Terminal() {
    if (redraw_) log_.keep_prompt(nullptr);
}

void Terminal::show_prompt() {
    shown_ = prompt;
    std::cerr << prompt << std::flush;
}

void Terminal::read_line() {
    show_prompt();
    asio::async_read_until(in_, buf_, '\n', [this](relay::error_code ec, std::size_t) {
        // The user pressed Enter: the cursor is on a fresh line, and the reply comes next.
        shown_.clear();
        if (ec) return;
        std::istream is(&buf_);
        std::string line;
        std::getline(is, line);
        std::vector<std::string> words;
        for (auto& p : split(line, ' '))
            if (!p.empty()) words.push_back(p);
        if (!words.empty() && words[0] == "exit") return agent_.stop();
        agent_.command(words, [this](Reply r) {
            std::cout << escape_controls(r.body, "\t\n") << std::flush;
            read_line();
        });
    });
}

}  // namespace tn::vnet
