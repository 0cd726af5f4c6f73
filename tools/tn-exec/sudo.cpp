// --sudo: sudo's command line and the prompt gate.
#include "sudo.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "base/error.hpp"
#include "base/strings.hpp"

namespace tn::exec {

namespace {
std::string prompt_marker(const std::string& token) { return "[tn-exec-sudo " + token + " prompt]"; }
std::string started_marker(const std::string& token) { return "[tn-exec-sudo " + token + " started]\n"; }

// How many bytes at the end of `s` are a proper prefix of `marker`.
std::size_t partial_suffix(const std::string& s, const std::string& marker) {
    for (std::size_t k = std::min(s.size(), marker.size() - 1); k > 0; --k)
        if (s.compare(s.size() - k, k, marker, 0, k) == 0) return k;
    return 0;
}
}  // namespace

std::string sudo_token() {
    unsigned char b[16];
    std::size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(ExitCode::io, std::string("getrandom: ") + std::strerror(errno));
        got += static_cast<std::size_t>(n);
    }
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : b) {
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 15]);
    }
    return out;
}

std::string sudo_command(const std::string& inner, const std::string& user, const std::string& token,
                         bool with_password) {
    // The marker has no '%': sudo expands nothing in it. -p overrides PAM's prompt (sudo's default).
    std::string cmd = with_password ? "sudo -S -p " + shell_quote(prompt_marker(token)) : std::string("sudo -n");
    if (!user.empty()) cmd += " -u " + shell_quote(user);
    // printf of a fixed word: the started marker says sudo ran the shell, before any byte of the command.
    std::string started = started_marker(token);
    started.pop_back();
    return cmd + " -- /bin/sh -c " + shell_quote("printf '%s\\n' " + shell_quote(started) + " >&2; " + inner);
}

SudoGate::SudoGate(std::string token, PasswordFn password)
    : prompt_(prompt_marker(token)), started_line_(started_marker(token)), password_(std::move(password)) {}

ssh::PreambleStep SudoGate::on_stderr(std::string_view chunk, const std::function<void(std::string_view)>& reply) {
    ssh::PreambleStep step;
    if (started_) {
        step.err = std::string(chunk);
        return step;
    }
    held_.append(chunk);
    for (;;) {
        auto p = held_.find(prompt_);
        auto s = held_.find(started_line_);
        if (p == std::string::npos && s == std::string::npos) break;
        if (p != std::string::npos && (s == std::string::npos || p < s)) {
            step.err.append(held_, 0, p);
            held_.erase(0, p + prompt_.size());
            if (++prompts_ == 1 && password_) {
                auto pw = password_();  // may run askpass; throws PasswordError when it fails
                reply(pw->expose());
                reply("\n");
            } else {
                step.close_stdin = true;  // asked again: the password was wrong; sudo ends on EOF
            }
            continue;
        }
        step.err.append(held_, 0, s);
        held_.erase(0, s + started_line_.size());
        started_ = true;
        step.err += held_;  // the command's own stderr from here on
        held_.clear();
        return step;
    }
    // Pass on all but a tail that may be the start of a marker split across packets.
    std::size_t keep = std::max(partial_suffix(held_, prompt_), partial_suffix(held_, started_line_));
    step.err.append(held_, 0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
    return step;
}

std::string SudoGate::flush() {
    std::string out;
    out.swap(held_);
    return out;
}

SudoFailure sudo_failure(const SudoGate& gate, int code, const std::string& host, bool have_password) {
    if (gate.prompts() == 0 && code == 127)
        return {255, "sudo did not start on " + host + " (exit 127: is sudo installed there?)"};
    if (gate.prompts() > 1) return {77, "sudo refused the password on " + host};
    std::string msg = "sudo did not run the command on " + host + " (exit " + std::to_string(code) + ")";
    if (gate.prompts() == 0 && !have_password)
        msg += "; if its rule wants a password, give --password-stdin, --password-file or --askpass";
    return {77, msg};
}

}  // namespace tn::exec
