// Token files: read with a permission check, written 0600 with O_EXCL (no window with a wider mode).
#include "base/secret_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "base/error.hpp"
#include "base/unique_fd.hpp"

namespace tn {

namespace {
constexpr std::size_t max_token_file = 4096;
}

Secret read_secret_file(const std::filesystem::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw ParseError(path.string() + ": cannot open secret file: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) throw ParseError(path.string() + ": not a regular file");
    if ((st.st_mode & 077) != 0)
        throw ParseError(path.string() + ": secret file readable by " + ((st.st_mode & 007) ? "others" : "its group") +
                         ": run 'chmod 600 " + path.string() + "'");
    std::string text(max_token_file + 1, '\0');
    std::size_t got = 0;
    while (got < text.size()) {
        ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw ParseError(path.string() + ": cannot read secret file: " + std::strerror(errno));
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    if (got > max_token_file) throw ParseError(path.string() + ": secret file larger than 4 KiB");
    text.resize(got);
    auto eol = text.find('\n');
    Secret line(text.substr(0, eol));
    std::fill(text.begin(), text.end(), '\0');
    const std::string& v = line.expose();
    auto b = v.find_first_not_of(" \t\r");
    auto e = v.find_last_not_of(" \t\r");
    if (b == std::string::npos) throw ParseError(path.string() + ": secret file is empty");
    return Secret(v.substr(b, e - b + 1));
}

void write_secret_file(const std::filesystem::path& path, const Secret& token) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) throw Error(ExitCode::io, path.string() + ": cannot create token file: " + std::strerror(errno) +
                                           (errno == EEXIST ? " (not overwritten)" : ""));
    std::string text = token.expose() + "\n";
    std::size_t put = 0;
    while (put < text.size()) {
        ssize_t n = ::write(fd.get(), text.data() + put, text.size() - put);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int err = errno;
            std::fill(text.begin(), text.end(), '\0');
            throw Error(ExitCode::io, path.string() + ": cannot write token file: " + std::strerror(err));
        }
        put += static_cast<std::size_t>(n);
    }
    std::fill(text.begin(), text.end(), '\0');
    if (::fsync(fd.get()) != 0) throw Error(ExitCode::io, path.string() + ": cannot write token file: " + std::strerror(errno));
}

}  // namespace tn
