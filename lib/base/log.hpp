// Logger: one line per event on stderr, as text or JSON, with ISO-8601 UTC timestamps (SPEC §2).
#pragma once

#include <chrono>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace tn::log {

enum class Level { trace, debug, info, warn, error };
enum class Format { text, json };

std::string_view level_name(Level l);  // "INFO", "WARN", ...
std::optional<Format> parse_format(std::string_view s);
// -v raises and -q lowers the default level (info); clamped to the valid range.
Level level_from_verbosity(int verbose, int quiet);

// ISO-8601 UTC with milliseconds: 2026-11-23T10:00:00.123Z
std::string iso8601_utc(std::chrono::system_clock::time_point t);

// One formatted line, newline included. Pure, so tests check the exact bytes.
std::string format_line(Format f, Level l, std::string_view tool, std::string_view msg,
                        std::chrono::system_clock::time_point t);

// Owned by a tool's main and passed by reference to its runner; library code does not log.
class Logger {
public:
    explicit Logger(std::string tool, Level min = Level::info, Format format = Format::text, int fd = 2)
        : tool_(std::move(tool)), min_(min), format_(format), fd_(fd) {}

    bool enabled(Level l) const { return l >= min_; }
    void set_level(Level l) { min_ = l; }
    void set_format(Format f) { format_ = f; }
    Format format() const { return format_; }
    const std::string& tool() const { return tool_; }

    void write(Level l, std::string_view msg) const;

    template <class... A> void log(Level l, const A&... parts) const {
        if (!enabled(l)) return;
        std::ostringstream os;
        (os << ... << parts);
        write(l, os.str());
    }
    template <class... A> void trace(const A&... a) const { log(Level::trace, a...); }
    template <class... A> void debug(const A&... a) const { log(Level::debug, a...); }
    template <class... A> void info(const A&... a) const { log(Level::info, a...); }
    template <class... A> void warn(const A&... a) const { log(Level::warn, a...); }
    template <class... A> void error(const A&... a) const { log(Level::error, a...); }

private:
    std::string tool_;
    Level min_;
    Format format_;
    int fd_;
};

}  // namespace tn::log
