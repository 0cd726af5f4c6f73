// EventSink: one JSON object per line, flushed at once so a pipe reader sees it immediately.
#include "events.hpp"

#include <unistd.h>

#include <chrono>

#include "base/log.hpp"
#include "base/strings.hpp"

namespace tn::forward {

void EventSink::emit(std::string_view type, std::initializer_list<std::pair<std::string_view, std::string>> fields,
                     std::initializer_list<std::pair<std::string_view, long long>> numbers) const {
    if (!enabled_) return;
    std::string line = "{\"ts\":" + json_quote(log::iso8601_utc(std::chrono::system_clock::now())) +
                       ",\"event\":" + json_quote(type);
    for (const auto& [k, v] : fields) line += "," + json_quote(k) + ":" + json_quote(v);
    for (const auto& [k, v] : numbers) line += "," + json_quote(k) + ":" + std::to_string(v);
    line += "}\n";
    std::size_t off = 0;
    while (off < line.size()) {
        ssize_t n = ::write(STDOUT_FILENO, line.data() + off, line.size() - off);
        if (n <= 0) return;  // stdout closed: events are best effort, forwarding goes on
        off += static_cast<std::size_t>(n);
    }
}

}  // namespace tn::forward
