// Atomic 0600 writes and bounded reads of the tool's state files.
#include "state_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/unique_fd.hpp"

namespace tn::tuntool {

bool write_private_file(const std::filesystem::path& path, const std::string& text) {
    auto tmp = path;
    tmp += ".tmp";
    ::unlink(tmp.c_str());  // O_EXCL below: never write through something someone put there
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd || ::fchmod(fd.get(), 0600) != 0) return false;
    std::size_t off = 0;
    while (off < text.size()) {
        ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        off += static_cast<std::size_t>(n);
    }
    return ::rename(tmp.c_str(), path.c_str()) == 0;
}

std::optional<std::string> read_small_file(const std::filesystem::path& path, std::size_t cap) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return std::nullopt;
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::nullopt;
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > cap) return std::nullopt;
    }
    return out;
}

}  // namespace tn::tuntool
