// LogFile: the $STATE/N.log a supervisor writes, rotated by size and keeping N old files (N.log.1 ...).
#pragma once

#include <cstddef>
#include <filesystem>
#include <string_view>

#include "base/unique_fd.hpp"

namespace tn::watch {

class LogFile {
public:
    // `capture_stdio`: also point fds 1 and 2 at the current file (detached supervisors log there).
    LogFile(std::filesystem::path path, std::size_t max_bytes, int keep, bool capture_stdio);
    // Appends one line (a newline is added); rotates first when the line would pass max_bytes.
    void write_line(std::string_view line);
    // Rotates when the file has reached max_bytes by writes that bypassed write_line (the supervisor's
    // own log lines through fd 2 in detached mode): a crash loop of a silent child must not grow it forever.
    void check_size();
    const std::filesystem::path& path() const { return path_; }

private:
    void open();
    void rotate();
    std::filesystem::path path_;
    std::size_t max_bytes_;
    int keep_;
    bool capture_stdio_;
    UniqueFd fd_;
};

}  // namespace tn::watch
