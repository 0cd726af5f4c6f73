// Size-based log rotation; with capture_stdio the supervisor's own stderr follows the current file.
#include "log_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "base/error.hpp"

namespace tn::watch {

LogFile::LogFile(std::filesystem::path path, std::size_t max_bytes, int keep, bool capture_stdio)
    : path_(std::move(path)), max_bytes_(max_bytes), keep_(keep), capture_stdio_(capture_stdio) {
    open();
}

void LogFile::open() {
    fd_.reset(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!fd_) throw Error(ExitCode::io, "cannot open log " + path_.string() + ": " + std::strerror(errno));
    if (capture_stdio_) {
        ::dup2(fd_.get(), 1);
        ::dup2(fd_.get(), 2);
    }
}

void LogFile::rotate() {
    // N.log.(keep-1) -> N.log.keep ... N.log -> N.log.1; the oldest falls off the end.
    std::error_code ec;
    auto name = [&](int i) {
        auto p = path_;
        p += "." + std::to_string(i);
        return p;
    };
    if (keep_ <= 0) {
        std::filesystem::remove(path_, ec);
    } else {
        std::filesystem::remove(name(keep_), ec);
        for (int i = keep_ - 1; i >= 1; --i) std::filesystem::rename(name(i), name(i + 1), ec);
        std::filesystem::rename(path_, name(1), ec);
    }
    open();
}

void LogFile::check_size() {
    struct stat st {};
    if (::fstat(fd_.get(), &st) == 0 && static_cast<std::size_t>(st.st_size) >= max_bytes_) rotate();
}

void LogFile::write_line(std::string_view line) {
    struct stat st {};
    // fstat, not a counter: in detached mode the logger writes to the same file through fd 2.
    if (::fstat(fd_.get(), &st) == 0 && st.st_size > 0 &&
        static_cast<std::size_t>(st.st_size) + line.size() + 1 > max_bytes_)
        rotate();
    iovec iov[2] = {{const_cast<char*>(line.data()), line.size()}, {const_cast<char*>("\n"), 1}};
    // A full disk must not kill the supervisor: the line is lost, the child keeps running.
    (void)::writev(fd_.get(), iov, 2);
}

}  // namespace tn::watch
