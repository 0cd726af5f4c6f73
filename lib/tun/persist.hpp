// The server's record of peers' handshake timestamps (doc/PROTOCOL.tun.md §4), one line per peer:
// "<base64 public key> <24 hex digits>". Kept in a 0600 state file across restarts.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tun/handshake.hpp"

namespace tn::tun {

std::string format_timestamps(const std::vector<std::pair<Key, Timestamp>>& ts);
// Lines that do not parse are skipped: the file is ours, but input all the same.
std::vector<std::pair<Key, Timestamp>> parse_timestamps(std::string_view text);

}  // namespace tn::tun
