// The argument vector of a process, from /proc/PID/cmdline: how a tool proves that a pid it read from a
// file (a status file, a pid file) is still the process it started, and not an unrelated one that got
// the pid after it ended.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace tn {

// NUL-separated arguments as the kernel writes them: the last one's NUL is optional, an empty
// argument stays an empty string, an empty input is no argument.
std::vector<std::string> split_cmdline(std::string_view raw);

// argv of process `pid`; empty when it is gone, a kernel thread or a zombie, when /proc cannot be read,
// or when the entry is longer than `max_bytes`: a cut-off argv could match a shorter one, so an
// over-long entry is never reported in part.
std::vector<std::string> read_cmdline(pid_t pid, std::size_t max_bytes = 1024 * 1024);

}  // namespace tn
