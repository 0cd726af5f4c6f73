// A one-line progress bar on stderr (bytes, rate, ETA), drawn only when stderr is a TTY.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace tn::exec {

// Pure formatting, so tests check the text: "name  12.0 MiB / 64.0 MiB  18%  110.2 MiB/s  ETA 0:01".
std::string format_progress(const std::string& name, std::uint64_t done, std::uint64_t total, double seconds,
                            std::size_t width);
std::string format_bytes(double bytes);  // "12.0 MiB"

class Progress {
public:
    // Draws on `fd` (a --persist master draws on its client's stderr) when enabled and fd is a TTY.
    explicit Progress(bool enabled, int fd = 2);
    ~Progress();
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    void start_file(const std::string& name, std::uint64_t size);
    void add(std::uint64_t bytes);
    void finish();  // ends the line

private:
    void draw(bool force);
    bool on_ = false;
    int fd_ = 2;
    std::string name_;
    std::uint64_t done_ = 0, total_ = 0;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace tn::exec
