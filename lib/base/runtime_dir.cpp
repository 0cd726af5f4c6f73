// Runtime directory resolution and flock-based single-instance locks.
#include "base/runtime_dir.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/error.hpp"

namespace tn {

EnvLookup process_env() {
    return [](const std::string& name) -> std::optional<std::string> {
        const char* v = std::getenv(name.c_str());
        if (v == nullptr || *v == '\0') return std::nullopt;
        return std::string(v);
    };
}

std::filesystem::path home_dir(const EnvLookup& env) {
    if (auto h = env("HOME")) return *h;
    if (const passwd* pw = getpwuid(getuid()); pw != nullptr && pw->pw_dir != nullptr) return pw->pw_dir;
    throw Error(ExitCode::config, "cannot determine the home directory: HOME is unset and there is no passwd entry");
}

std::filesystem::path state_dir_path(const EnvLookup& env) {
    if (auto d = env("TN_STATE_DIR")) return *d;
    if (auto d = env("XDG_RUNTIME_DIR")) return std::filesystem::path(*d) / "tn";
    return home_dir(env) / ".local" / "state" / "tn";
}

std::filesystem::path ensure_state_dir(const EnvLookup& env) {
    auto dir = state_dir_path(env);
    std::error_code ec;
    if (!std::filesystem::exists(dir, ec)) {
        std::filesystem::create_directories(dir, ec);
        if (ec) throw Error(ExitCode::io, "cannot create state directory " + dir.string() + ": " + ec.message());
        ::chmod(dir.c_str(), 0700);
    }
    return dir;
}

std::optional<FileLock> FileLock::try_acquire(const std::filesystem::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) throw Error(ExitCode::io, "cannot open lock file " + path.string() + ": " + std::strerror(errno));
    for (;;) {
        if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return FileLock(path, std::move(fd));
        if (errno == EINTR) continue;
        if (errno == EWOULDBLOCK) return std::nullopt;
        throw Error(ExitCode::io, "cannot lock " + path.string() + ": " + std::strerror(errno));
    }
}

}  // namespace tn
