// Logger: formatting and the single write(2) per line that keeps lines whole across threads.
#include "base/log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "base/strings.hpp"

namespace tn::log {

std::string_view level_name(Level l) {
    switch (l) {
    case Level::trace: return "TRACE";
    case Level::debug: return "DEBUG";
    case Level::info: return "INFO";
    case Level::warn: return "WARN";
    case Level::error: return "ERROR";
    }
    return "?";
}

std::optional<Format> parse_format(std::string_view s) {
    if (s == "text") return Format::text;
    if (s == "json") return Format::json;
    return std::nullopt;
}

Level level_from_verbosity(int verbose, int quiet) {
    int l = static_cast<int>(Level::info) - verbose + quiet;
    if (l < static_cast<int>(Level::trace)) l = static_cast<int>(Level::trace);
    if (l > static_cast<int>(Level::error)) l = static_cast<int>(Level::error);
    return static_cast<Level>(l);
}

std::string iso8601_utc(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    if (ms % 1000 < 0) --secs;  // before the epoch: floor, not truncate
    int millis = static_cast<int>(((ms % 1000) + 1000) % 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
    return buf;
}

int syslog_priority(Level l) {
    switch (l) {
    case Level::error: return 3;
    case Level::warn: return 4;
    case Level::info: return 6;
    case Level::debug:
    case Level::trace: return 7;
    }
    return 6;
}

Sink stderr_sink() {
    const char* js = std::getenv("JOURNAL_STREAM");
    if (js == nullptr) return Sink::plain;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return Sink::plain;
    struct stat sb {};
    if (::fstat(2, &sb) != 0) return Sink::plain;
    return sb.st_dev == dev && sb.st_ino == ino ? Sink::journal : Sink::plain;
}

Fields with_field(Fields fields, std::string_view key, std::string value) {
    std::string k(key);
    for (auto& c : k)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) c = '_';
    if (k.empty() || k == "ts" || k == "level" || k == "tool" || k == "msg") k += '_';
    for (auto& f : fields)
        if (f.key == k) {
            f.value = std::move(value);
            return fields;
        }
    fields.push_back({std::move(k), std::move(value)});
    return fields;
}

namespace {

// `[k=v k2="a b"] `: values a peer chose stay one token each (quoted when they would split or
// forge the prefix) and have their control bytes escaped like the message.
std::string text_prefix(const Fields& fields) {
    if (fields.empty()) return {};
    std::string out = "[";
    for (const auto& f : fields) {
        if (out.size() > 1) out += ' ';
        out += f.key;
        out += '=';
        bool quote = f.value.empty() || f.value.find_first_of(" \"=]") != std::string::npos;
        out += quote ? json_quote_text(f.value) : escape_controls(f.value);
    }
    out += "] ";
    return out;
}

}  // namespace

std::string format_line(Format f, Level l, std::string_view tool, std::string_view msg,
                        std::chrono::system_clock::time_point t, Sink sink, const Fields& fields) {
    std::string out;
    if (f == Format::json) {
        std::string lvl(level_name(l));
        for (auto& c : lvl) c = static_cast<char>(c - 'A' + 'a');
        // json_quote_text: valid JSON whatever a peer put in the message (control bytes, broken UTF-8).
        out = "{\"ts\":" + json_quote(iso8601_utc(t)) + ",\"level\":" + json_quote(lvl) + ",\"tool\":" + json_quote_text(tool);
        for (const auto& fd : fields) out += "," + json_quote_text(fd.key) + ":" + json_quote_text(fd.value);
        out += ",\"msg\":" + json_quote_text(msg) + "}\n";
        return out;
    }
    std::string lvl(level_name(l));
    lvl.resize(5, ' ');  // fixed width so messages line up
    if (sink == Sink::journal) out = "<" + std::to_string(syslog_priority(l)) + ">" + lvl + " " + std::string(tool) + ": ";
    else out = iso8601_utc(t) + " " + lvl + " " + std::string(tool) + ": ";
    // A message must stay one line and plain text: embedded newlines would forge log lines, and escape
    // sequences from a hostile peer's names would drive the terminal reading the log.
    out += text_prefix(fields);
    out += escape_controls(msg);
    out += '\n';
    return out;
}

std::string around_prompt(std::string_view line, std::string_view prompt) {
    if (prompt.empty()) return std::string(line);
    std::string out = "\r\x1b[K";
    out.append(line).append(prompt);
    return out;
}

void Logger::write(Level l, std::string_view msg, const Fields& fields) const {
    if (!enabled(l)) return;
    std::string line = format_line(format_, l, tool_, msg, std::chrono::system_clock::now(), sink_, fields);
    if (prompt_ && !prompt_->empty()) line = around_prompt(line, *prompt_);
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
        ssize_t n = ::write(fd_, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;  // stderr gone: nowhere left to report it
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

}  // namespace tn::log
