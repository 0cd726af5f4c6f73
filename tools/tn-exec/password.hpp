// Where tn-exec gets a login password: the first line of stdin, a private file, or an askpass
// program (OpenSSH's SSH_ASKPASS rules). Never from the command line or the environment.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "base/error.hpp"
#include "base/secret.hpp"

namespace tn::exec {

// A password that was refused, or that could not be had: exit 77 even where tn-exec's other
// failures (auth by key included, as with ssh) are 255, so a script can tell "wrong password".
class PasswordError : public Error {
public:
    explicit PasswordError(const std::string& message) : Error(ExitCode::no_perm, message) {}
};

struct PasswordOptions {
    bool from_stdin = false;   // --password-stdin
    std::string file;          // --password-file F
    std::string askpass;       // --askpass CMD
    int fd = -1;               // __master's --password-fd: handed over by the tn-exec that started it
};

// The askpass program to use when no other source was given, as OpenSSH decides it, except that
// tn-exec never prompts on a TTY: SSH_ASKPASS_REQUIRE=never -> none; force -> SSH_ASKPASS always;
// prefer -> when DISPLAY or WAYLAND_DISPLAY is set; unset (or any other value) -> when a display is
// set and stdin is not a TTY. Pure, for the unit tests: the caller passes the environment in.
std::optional<std::string> env_askpass(const char* ssh_askpass, const char* require, bool has_display, bool stdin_tty);

// One password for every host of a run. stdin, file and fd are read at once (stdin before anything
// else reads it, byte by byte so what follows the first line stays on fd 0 for the command or
// `put -`); askpass runs on first need, once. Thread-safe. The value is wiped when the last user
// lets go of it.
class PasswordSource {
public:
    // nullptr when no source is configured. Throws tn::Error: 64 for two sources at once, 77 for a
    // password file others can read, 74 for one that cannot be read, 65 for an empty password.
    static std::shared_ptr<PasswordSource> make(const PasswordOptions& o);

    // The password; `prompt` ("user@host's password: ") is what an askpass program shows.
    // Throws tn::Error(77) when the askpass program fails or is cancelled.
    std::shared_ptr<const Secret> get(const std::string& prompt);
    bool is_askpass() const { return !askpass_.empty(); }

private:
    std::mutex mu_;
    std::shared_ptr<const Secret> value_;
    std::string askpass_;
};

// The first line of what fd holds (at most 4096 bytes, without "\n" or "\r\n"); reads no further
// than that line's newline. Throws tn::Error(65) when it is empty.
Secret read_password_line(int fd, const std::string& what);

// Reads the first line of a password file, refusing (77) one its group or others can read or that
// another user owns.
Secret read_password_file(const std::string& path);

// Runs `program prompt` (no shell, as OpenSSH does) and returns the first line of its output.
Secret run_askpass(const std::string& program, const std::string& prompt);

}  // namespace tn::exec
