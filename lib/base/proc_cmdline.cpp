#include "base/proc_cmdline.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "base/unique_fd.hpp"

namespace tn {

std::vector<std::string> split_cmdline(std::string_view raw) {
    std::vector<std::string> argv;
    for (std::size_t pos = 0; pos < raw.size();) {
        auto end = raw.find('\0', pos);
        if (end == std::string_view::npos) end = raw.size();
        argv.emplace_back(raw.substr(pos, end - pos));
        pos = end + 1;
    }
    return argv;
}

std::vector<std::string> read_cmdline(pid_t pid, std::size_t max_bytes) {
    if (pid <= 0) return {};
    UniqueFd fd(::open(("/proc/" + std::to_string(pid) + "/cmdline").c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return {};
    std::string raw;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return {};
        if (n == 0) break;
        raw.append(buf, static_cast<std::size_t>(n));
        if (raw.size() > max_bytes) return {};
    }
    return split_cmdline(raw);
}

}  // namespace tn
