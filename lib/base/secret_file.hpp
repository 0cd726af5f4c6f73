// Secrets kept in their own files (token_file, password_file and e2e_secret_file in configs,
// --token-file, --token-out): read and write them with the same rules everywhere, so a secret never
// lands in a file others can read.
#pragma once

#include <filesystem>

#include "base/secret.hpp"

namespace tn {

// The secret in PATH: its first line, surrounding blanks dropped. Refused when the file is readable by
// its group or others (as ssh refuses such a private key), empty, or larger than 4 KiB. Throws
// ParseError with the reason: the caller knows whether that is a config (78) or a usage (64) error.
Secret read_secret_file(const std::filesystem::path& path);

// Writes `token` and a newline to a new file PATH, mode 0600 from its creation; never over an
// existing file. Throws tn::Error(io) with the reason.
void write_secret_file(const std::filesystem::path& path, const Secret& token);

}  // namespace tn
