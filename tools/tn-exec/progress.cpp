// Progress bar formatting and throttled drawing (at most 10 redraws a second).
#include "progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "output.hpp"

namespace tn::exec {

std::string format_bytes(double b) {
    static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
    return buf;
}

std::string format_progress(const std::string& name, std::uint64_t done, std::uint64_t total, double seconds,
                            std::size_t width) {
    double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
    std::string eta = "--:--";
    if (rate > 0 && total >= done) {
        auto left = static_cast<long long>(std::ceil(static_cast<double>(total - done) / rate));
        char buf[32];
        std::snprintf(buf, sizeof buf, "%lld:%02lld", left / 60, left % 60);
        eta = buf;
    }
    int pct = total > 0 ? static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total)) : 100;
    std::string tail = "  " + format_bytes(static_cast<double>(done)) + " / " + format_bytes(static_cast<double>(total)) +
                       "  " + std::to_string(pct) + "%  " + format_bytes(rate) + "/s  ETA " + eta;
    std::string head = name;
    if (width > tail.size() + 4 && head.size() > width - tail.size()) head = "..." + head.substr(head.size() - (width - tail.size() - 3));
    return head + tail;
}

Progress::Progress(bool enabled, int fd) : on_(enabled && ::isatty(fd)), fd_(fd) {}

Progress::~Progress() { finish(); }

void Progress::start_file(const std::string& name, std::uint64_t size) {
    if (!on_) return;
    if (!name_.empty()) finish();
    name_ = name;
    done_ = 0;
    total_ = size;
    start_ = std::chrono::steady_clock::now();
    draw(true);
}

void Progress::add(std::uint64_t bytes) {
    if (!on_) return;
    done_ += bytes;
    draw(done_ >= total_);
}

void Progress::draw(bool force) {
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    winsize ws{};
    std::size_t width = (::ioctl(fd_, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) ? ws.ws_col - 1 : 79;
    double secs = std::chrono::duration<double>(now - start_).count();
    write_all(fd_, "\r\033[K" + format_progress(name_, done_, total_, secs, width));
}

void Progress::finish() {
    if (!on_ || name_.empty()) return;
    draw(true);
    write_all(fd_, "\n");
    name_.clear();
}

}  // namespace tn::exec
