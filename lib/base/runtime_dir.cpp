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

StateDirs resolve_state_dirs(const StateDirInputs& in) {
    if (in.tn_state_dir) return {*in.tn_state_dir, *in.tn_state_dir};
    if (in.root) return {"/run/tn", "/var/lib/tn"};
    std::filesystem::path home;
    if (in.home_env && in.home_env_owned) home = *in.home_env;
    else if (in.passwd_home) home = *in.passwd_home;
    else if (in.home_env) home = *in.home_env;
    else throw Error(ExitCode::config, "cannot determine the home directory: HOME is unset and there is no passwd entry; "
                                       "set TN_STATE_DIR");
    auto dir = home / ".local" / "state" / "tn";
    return {dir, dir};
}

StateDirInputs gather_state_dir_inputs(const EnvLookup& env) {
    StateDirInputs in;
    in.tn_state_dir = env("TN_STATE_DIR");
    in.root = ::geteuid() == 0;
    if (auto h = env("HOME")) {
        in.home_env = *h;
        struct stat sb {};
        in.home_env_owned = ::stat(h->c_str(), &sb) == 0 && sb.st_uid == ::geteuid();
    }
    if (const passwd* pw = getpwuid(::geteuid()); pw != nullptr && pw->pw_dir != nullptr && *pw->pw_dir != '\0')
        in.passwd_home = pw->pw_dir;
    return in;
}

StateDirs state_dirs(const EnvLookup& env) { return resolve_state_dirs(gather_state_dir_inputs(env)); }

std::filesystem::path state_dir_path(const EnvLookup& env) { return state_dirs(env).runtime; }
std::filesystem::path persistent_dir_path(const EnvLookup& env) { return state_dirs(env).persistent; }

namespace {
std::filesystem::path ensure_dir(const std::filesystem::path& dir) {
    std::error_code ec;
    if (!std::filesystem::exists(dir, ec)) {
        std::filesystem::create_directories(dir, ec);
        if (ec) throw Error(ExitCode::io, "cannot create state directory " + dir.string() + ": " + ec.message());
        ::chmod(dir.c_str(), 0700);
    }
    return dir;
}
}  // namespace

std::filesystem::path ensure_state_dir(const EnvLookup& env) { return ensure_dir(state_dir_path(env)); }
std::filesystem::path ensure_persistent_dir(const EnvLookup& env) { return ensure_dir(persistent_dir_path(env)); }

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
