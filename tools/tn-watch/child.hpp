// Starting the supervised command in its own process group, and splitting its output into lines.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/unique_fd.hpp"

namespace tn::watch {

struct Spawned {
    int pid = 0;  // also the process group id
    UniqueFd out, err;  // read ends, non-blocking
};

// New session and process group, stdin /dev/null, stdout/stderr to pipes, default signal mask and
// dispositions (lib/base/spawn). Throws tn::Error(unavailable) with the reason when the command cannot be run.
Spawned spawn_child(const std::vector<std::string>& argv);

// Collects bytes into lines. A line longer than the cap is cut there and delivered in pieces, so a
// child that never writes a newline cannot make us buffer without bound.
class LineSplitter {
public:
    static constexpr std::size_t max_line = 16 * 1024;
    using Emit = std::function<void(std::string_view)>;
    void feed(std::string_view bytes, const Emit& emit);
    void flush(const Emit& emit);  // the unterminated tail at EOF

private:
    std::string buf_;
};

}  // namespace tn::watch
