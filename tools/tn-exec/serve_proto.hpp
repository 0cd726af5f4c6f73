// tn-exec serve --stdio's protocol, without I/O: request lines cut from the byte stream, each parsed
// into a checked request, and the base64 both directions use. What the fuzz target exercises.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace tn::exec {

// Cuts stdin into request lines of at most `max` bytes. A longer line is dropped up to its newline
// (memory stays bounded) and reported once through on_too_long.
class LineSplitter {
public:
    explicit LineSplitter(std::size_t max) : max_(max) {}
    void feed(std::string_view chunk, const std::function<void(const std::string&)>& on_line,
              const std::function<void()>& on_too_long);
    // At end of input: the last line when it had no newline.
    void finish(const std::function<void(const std::string&)>& on_line);

    // Called from on_line for a line that announces `n` bytes of raw data (a put's "data_bytes"): the
    // next n bytes of the stream are that data, not lines. on_data gets them whole, or, when n is over
    // `keep`, skipped (nothing kept: memory stays bounded) with an empty string and `skipped` set.
    using DataFn = std::function<void(std::string&& data, bool skipped)>;
    void take_raw(std::uint64_t n, std::uint64_t keep, DataFn on_data);
    // The input ended inside raw data: the bytes still missing (0 when none).
    std::uint64_t raw_missing() const { return raw_left_; }

private:
    std::size_t max_;
    std::string line_;
    bool skipping_ = false;
    std::uint64_t raw_left_ = 0;
    bool raw_skip_ = false;
    std::string raw_;
    DataFn on_raw_;
};

struct ServeRequest {
    std::string id = "null";  // as it goes back in every answer: a JSON string, or null
    std::string op, host, path;
    std::string command, cwd;                // run
    std::optional<double> timeout;           // run, seconds > 0
    std::optional<std::string> stdin_data;   // run, decoded
    std::optional<std::string> sudo;         // run through sudo: "sudo":true (""), or "sudo_user":"USER"
    std::string data;                        // put, decoded (or the raw bytes after the line)
    std::optional<std::uint64_t> data_bytes;  // put: the data follows the line as that many raw bytes
    bool raw = false;                        // get: the data follows the result line as raw bytes
    bool recursive = false, parents = false;  // ls/rm, mkdir
    std::string to;                          // mv
    std::uint32_t mode = 0;                  // chmod
};

// Parses one line into `out`, id and data_bytes first (so an answer to a bad request still carries its
// id, and the raw bytes it announced are still taken off the stream). Throws
// tn::Error(65) for what is not a JSON object or not base64, ParseError (64) for an unknown op or a
// missing or ill-typed field.
void parse_request(const std::string& line, ServeRequest& out);

std::string b64_encode(std::string_view in);
// Throws tn::Error(65) unless `in` is canonical padded base64.
std::string b64_decode(std::string_view in);

}  // namespace tn::exec
