// --sudo: the remote command run through sudo, and the gate that answers sudo's password prompt.
// The password goes to `sudo -S` on the channel's stdin, and only when sudo shows our prompt (a
// random marker, so the command's own output cannot fake it); the command's stdin flows only once
// a second marker says sudo has started it. Never in argv, the environment or any output.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "base/secret.hpp"
#include "ssh/exec.hpp"

namespace tn::exec {

// 16 random bytes as hex: the marker's secret part.
std::string sudo_token();

// `inner` (a command line for /bin/sh) as run by sudo as `user` (empty: sudo's default, root).
// With a password: `sudo -S -p PROMPT`, else `sudo -n` (a rule that wants a password fails at once).
std::string sudo_command(const std::string& inner, const std::string& user, const std::string& token,
                         bool with_password);

// Pure: fed the remote's stderr before the command starts; strips both markers, answers the first
// prompt with the password and refuses a second one (a wrong password is not retried: no lockout loop).
class SudoGate : public ssh::ExecPreamble {
public:
    using PasswordFn = std::function<std::shared_ptr<const Secret>()>;
    // password: null when there is no password source (sudo -n).
    SudoGate(std::string token, PasswordFn password);

    ssh::PreambleStep on_stderr(std::string_view chunk, const std::function<void(std::string_view)>& reply) override;
    bool done() const override { return started_; }
    std::string flush() override;

    bool started() const { return started_; }
    int prompts() const { return prompts_; }

private:
    std::string prompt_, started_line_;
    PasswordFn password_;
    std::string held_;  // stderr that may be the start of a marker
    bool started_ = false;
    int prompts_ = 0;
};

// Why sudo did not start the command (it exited with `code` before our start marker): a message
// for the user, and the exit code (77: refused; 255: sudo missing).
struct SudoFailure {
    int code;
    std::string message;
};
SudoFailure sudo_failure(const SudoGate& gate, int code, const std::string& host, bool have_password);

}  // namespace tn::exec
