// The server's record of peers' handshake timestamps (doc/PROTOCOL.tun.md §4), one line per peer:
// "<base64 public key> <24 hex digits>". Kept in a 0600 state file across restarts.
#pragma once

#include <algorithm>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tun/handshake.hpp"

namespace tn::tun {

std::string format_timestamps(const std::vector<std::pair<Key, Timestamp>>& ts);
// Lines that do not parse are skipped: the file is ours, but input all the same.
std::vector<std::pair<Key, Timestamp>> parse_timestamps(std::string_view text);

// The record kept as an append-only log (no I/O here: the runner writes what this returns). Each
// accepted handshake appends its peer's line, O(1) where writing the whole record made N peers
// reconnecting cost O(N^2). Loading keeps each key's greatest timestamp, so the older lines a key
// leaves behind, and a line torn by a crash, change nothing. Once the log holds more appended lines
// than the record has keys (and at least kMinAppends), compaction_due(): the runner writes whole()
// in place of the log and calls compacted(). The file stays under twice the record plus kMinAppends.
class TimestampLog {
public:
    static constexpr std::size_t kMinAppends = 64;

    explicit TimestampLog(std::string_view file_text = {});
    const std::map<Key, Timestamp>& record() const { return record_; }
    // `k`'s initiation with `t` was accepted: the line to append (its greatest timestamp so far).
    std::string accept(const Key& k, const Timestamp& t);
    bool compaction_due() const { return appended_ > std::max(record_.size(), kMinAppends); }
    std::string whole() const;  // one line per key, in key order
    void compacted() { appended_ = 0; }

private:
    std::map<Key, Timestamp> record_;
    std::size_t appended_ = 0;
};

}  // namespace tn::tun
