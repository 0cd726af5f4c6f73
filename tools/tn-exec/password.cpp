// tn-exec password sources: stdin, a private file, an askpass program.
#include "password.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/error.hpp"
#include "base/spawn.hpp"
#include "base/unique_fd.hpp"

namespace tn::exec {

namespace {
constexpr std::size_t max_password = 4096;

// Reads up to max bytes from fd into a buffer reserved once, so no reallocation leaves a copy behind.
// With stop_at_newline, one byte at a time: what follows the line must stay unread.
std::string read_bounded(int fd, bool stop_at_newline, const std::string& what) {
    std::string buf;
    buf.reserve(max_password + 1);
    char c[512];
    for (;;) {
        std::size_t want = stop_at_newline ? 1 : sizeof c;
        ssize_t n = ::read(fd, c, want);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(ExitCode::io, "cannot read " + what + ": " + std::strerror(errno));
        if (n == 0) break;
        for (ssize_t i = 0; i < n && buf.size() <= max_password; ++i) buf.push_back(c[i]);
        std::memset(c, 0, sizeof c);
        if (stop_at_newline && buf.back() == '\n') break;
        if (buf.size() > max_password) {
            volatile char* p = buf.data();
            for (std::size_t i = 0; i < buf.size(); ++i) p[i] = 0;
            throw Error(ExitCode::data, what + ": the password line is longer than 4096 bytes");
        }
    }
    return buf;
}

Secret first_line(std::string raw, const std::string& what) {
    auto nl = raw.find('\n');
    std::size_t len = nl == std::string::npos ? raw.size() : nl;
    if (len > 0 && raw[len - 1] == '\r') --len;
    // Move the tail out of the way by overwriting it, not by erasing (which keeps the bytes).
    for (std::size_t i = len; i < raw.size(); ++i) raw[i] = '\0';
    raw.resize(len);
    if (raw.empty()) throw Error(ExitCode::data, what + ": no password (the first line is empty)");
    return Secret(std::move(raw));
}
}  // namespace

std::optional<std::string> env_askpass(const char* ssh_askpass, const char* require, bool has_display, bool stdin_tty) {
    if (ssh_askpass == nullptr || *ssh_askpass == '\0') return std::nullopt;
    std::string req = require != nullptr ? require : "";
    if (req == "never") return std::nullopt;
    if (req == "force") return std::string(ssh_askpass);
    if (req == "prefer") return has_display ? std::optional<std::string>(ssh_askpass) : std::nullopt;
    return has_display && !stdin_tty ? std::optional<std::string>(ssh_askpass) : std::nullopt;
}

Secret read_password_line(int fd, const std::string& what) { return first_line(read_bounded(fd, true, what), what); }

Secret read_password_file(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd) throw Error(ExitCode::io, "cannot read password file " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
        throw Error(ExitCode::io, "password file " + path + " is not a regular file");
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw Error(ExitCode::no_perm, "password file " + path + " is readable by " +
                                           ((st.st_mode & 007) ? "others" : "its group") + " (mode " + mode +
                                           "); refusing it: run 'chmod 600 " + path + "'");
    }
    if (st.st_uid != ::geteuid() && st.st_uid != 0)
        throw Error(ExitCode::no_perm, "password file " + path + " belongs to another user; refusing it");
    return first_line(read_bounded(fd.get(), false, "password file " + path), "password file " + path);
}

Secret run_askpass(const std::string& program, const std::string& prompt) {
    // stdin is /dev/null: the program must not eat what the command or `put -` reads from ours.
    proc::Command cmd{.argv = {program, prompt}, .in = proc::Input::null, .out = proc::Output::pipe};
    proc::Child child;
    try {
        child = proc::spawn(cmd);
    } catch (const Error& e) {
        throw PasswordError(std::string("askpass program: ") + e.what());
    }
    std::string out;
    try {
        out = read_bounded(child.out.get(), false, "askpass output");
    } catch (...) {
        child.out.reset();  // a program still writing gets EPIPE instead of keeping us waiting
        proc::wait_status(child.pid);
        throw;
    }
    child.out.reset();
    int st = proc::wait_status(child.pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        Secret wipe(std::move(out));
        throw PasswordError("askpass program " + program + " gave no password (cancelled or failed)");
    }
    return first_line(std::move(out), "askpass program " + program);
}

std::shared_ptr<PasswordSource> PasswordSource::make(const PasswordOptions& o) {
    int given = (o.from_stdin ? 1 : 0) + (o.file.empty() ? 0 : 1) + (o.askpass.empty() ? 0 : 1) + (o.fd >= 0 ? 1 : 0);
    if (given > 1) throw Error(ExitCode::usage, "give one password source: --password-stdin, --password-file or --askpass");
    auto src = std::make_shared<PasswordSource>();
    if (o.from_stdin) {
        src->value_ = std::make_shared<const Secret>(read_password_line(STDIN_FILENO, "--password-stdin"));
    } else if (!o.file.empty()) {
        src->value_ = std::make_shared<const Secret>(read_password_file(o.file));
    } else if (o.fd >= 0) {
        UniqueFd fd(o.fd);
        src->value_ = std::make_shared<const Secret>(read_password_line(fd.get(), "--password-fd"));
    } else if (!o.askpass.empty()) {
        src->askpass_ = o.askpass;
    } else {
        const char* disp = std::getenv("DISPLAY");
        const char* way = std::getenv("WAYLAND_DISPLAY");
        bool display = (disp != nullptr && *disp != '\0') || (way != nullptr && *way != '\0');
        auto prog = env_askpass(std::getenv("SSH_ASKPASS"), std::getenv("SSH_ASKPASS_REQUIRE"), display,
                                ::isatty(STDIN_FILENO) == 1);
        if (!prog) return nullptr;
        src->askpass_ = *prog;
    }
    return src;
}

std::shared_ptr<const Secret> PasswordSource::get(const std::string& prompt) {
    std::lock_guard lock(mu_);
    if (!value_) value_ = std::make_shared<const Secret>(run_askpass(askpass_, prompt));
    return value_;
}

}  // namespace tn::exec
