// Logger: one line per event on stderr, as text or JSON, with ISO-8601 UTC timestamps (doc/SPEC.md §2).
// When stderr is systemd's journal stream, text lines drop the timestamp (journald stamps each line)
// and start with a syslog priority, `<6>INFO  tn-route: ...`, so `journalctl -p warning` works.
#pragma once

#include <chrono>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace tn::log {

enum class Level { trace, debug, info, warn, error };
enum class Format { text, json };

std::string_view level_name(Level l);  // "INFO", "WARN", ...
std::optional<Format> parse_format(std::string_view s);
// -v raises and -q lowers the default level (info); clamped to the valid range.
Level level_from_verbosity(int verbose, int quiet);

// ISO-8601 UTC with milliseconds: 2026-11-23T10:00:00.123Z
std::string iso8601_utc(std::chrono::system_clock::time_point t);

// The syslog priority journald reads from a `<N>` prefix: error 3, warn 4, info 6, debug and trace 7.
int syslog_priority(Level l);

// Text lines as journald wants them (priority prefix, no timestamp); JSON lines are unchanged.
enum class Sink { plain, journal };

// Whether stderr is the stream systemd connected to the journal: $JOURNAL_STREAM names its
// device:inode (systemd.exec(5)); a child whose stderr was redirected elsewhere inherits the variable
// but not the stream, and keeps its timestamps.
Sink stderr_sink();

// A context field every line of one session carries (frp's xlog prefix): `peer=1.2.3.4:5`. Keys are
// ours ([a-z0-9_], not ts/level/tool/msg: with_field keeps them so); values may come from a peer.
struct Field {
    std::string key, value;
    bool operator==(const Field&) const = default;
};
using Fields = std::vector<Field>;

// One formatted line, newline included. Pure, so tests check the exact bytes. Fields go in text as
// `[k=v k2=v2] ` before the message (a value with a space, quote, '=' or ']' in it, or empty, is
// JSON-quoted so the prefix parses back) and in JSON as keys between "tool" and "msg".
std::string format_line(Format f, Level l, std::string_view tool, std::string_view msg,
                        std::chrono::system_clock::time_point t, Sink sink = Sink::plain, const Fields& fields = {});

// `fields` with key set to value: replaced in place if present, else appended. A key outside
// [a-z0-9_] has the other bytes made '_', and a key the line already uses (ts, level, tool, msg)
// gets a trailing '_', so a field can never overwrite or duplicate them.
Fields with_field(Fields fields, std::string_view key, std::string value);

class Context;

// The logging calls Logger and Context share: `log.info("x ", 3)` formats only when the level is on.
template <class Self>
class LogCalls {
public:
    template <class... A> void log(Level l, const A&... parts) const {
        const auto& self = static_cast<const Self&>(*this);
        if (!self.enabled(l)) return;
        std::ostringstream os;
        (os << ... << parts);
        self.write(l, os.str());
    }
    template <class... A> void trace(const A&... a) const { log(Level::trace, a...); }
    template <class... A> void debug(const A&... a) const { log(Level::debug, a...); }
    template <class... A> void info(const A&... a) const { log(Level::info, a...); }
    template <class... A> void warn(const A&... a) const { log(Level::warn, a...); }
    template <class... A> void error(const A&... a) const { log(Level::error, a...); }
};

// Owned by a tool's main and passed by reference to its runner; library code does not log.
class Logger : public LogCalls<Logger> {
public:
    explicit Logger(std::string tool, Level min = Level::info, Format format = Format::text, int fd = 2)
        : Logger(std::move(tool), min, format, fd, fd == 2 ? stderr_sink() : Sink::plain) {}
    Logger(std::string tool, Level min, Format format, int fd, Sink sink)
        : tool_(std::move(tool)), min_(min), format_(format), fd_(fd), sink_(sink) {}

    bool enabled(Level l) const { return l >= min_; }
    void set_level(Level l) { min_ = l; }
    void set_format(Format f) { format_ = f; }
    Format format() const { return format_; }
    Sink sink() const { return sink_; }
    const std::string& tool() const { return tool_; }

    void write(Level l, std::string_view msg, const Fields& fields = {}) const;

    // A child that writes through this Logger (its level, format and prompt, also when they change
    // later) with `key=value` on every line. It points to this Logger: it must not outlive it.
    Context with(std::string_view key, std::string value) const;

    // An interactive prompt on the same terminal (tn-vnet's `terminal = true`): while *prompt is not
    // empty, a log line first erases the prompt's line and then draws the prompt again, in the same
    // write(2), so a log line never lands after the prompt. Null (the default) turns it off; the
    // string must outlive the Logger or be detached first, and change only on the thread that logs.
    void keep_prompt(const std::string* prompt) const { prompt_ = prompt; }


private:
    std::string tool_;
    Level min_;
    Format format_;
    int fd_;
    Sink sink_;
    mutable const std::string* prompt_ = nullptr;  // set through the const Logger& every runner holds
};

// A Logger with context fields (frp's xlog): a session builds one when it learns who it talks to and
// logs through it, so each of its lines carries the same prefix without repeating fields at call
// sites. Cheap: a pointer and the fields; copying it copies the fields.
class Context : public LogCalls<Context> {
public:
    explicit Context(const Logger& base, Fields fields = {}) : base_(&base), fields_(std::move(fields)) {}

    Context with(std::string_view key, std::string value) const {
        return Context(*base_, with_field(fields_, key, std::move(value)));
    }
    const Fields& fields() const { return fields_; }
    bool enabled(Level l) const { return base_->enabled(l); }
    void write(Level l, std::string_view msg) const { base_->write(l, msg, fields_); }


private:
    const Logger* base_;
    Fields fields_;
};

inline Context Logger::with(std::string_view key, std::string value) const {
    return Context(*this, with_field({}, key, std::move(value)));
}

// `line` as written while `prompt` is on screen: "\r\x1b[K" (back to column 0, erase the line), the
// line, then the prompt again. An empty prompt leaves the line as it is.
std::string around_prompt(std::string_view line, std::string_view prompt);

}  // namespace tn::log
