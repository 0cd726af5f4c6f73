// Small private files in the state directory (routes a client added, peers' handshake timestamps).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace tn::tuntool {

// Writes `text` to `path` with mode 0600 whatever the umask, through a temporary file and rename(2):
// a kill at any point leaves the old content or the new, never half. False (errno set) on failure.
bool write_private_file(const std::filesystem::path& path, const std::string& text);

// The file's content (at most `cap` bytes), or nullopt when it does not exist or cannot be read.
std::optional<std::string> read_small_file(const std::filesystem::path& path, std::size_t cap = 1 << 20);

}  // namespace tn::tuntool
