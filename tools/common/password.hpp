// Reading a password the two safe ways: one line from stdin (for scripts), or a no-echo TTY prompt.
#pragma once

#include <optional>
#include <string>

#include "base/secret.hpp"

namespace tn::cli {

// The first line of stdin, without its newline. Throws tn::Error(data) if stdin is empty.
Secret read_password_stdin();

// Prompts on /dev/tty with echo off, only when stdin is a TTY; nullopt otherwise (never hangs a script).
std::optional<Secret> prompt_password_tty(const std::string& prompt);

}  // namespace tn::cli
