// Where remote output goes: raw streams for one host, `host: ` prefixed lines or JSON Lines records
// for many. One Output is shared by all worker threads; whole lines are written under its lock.
#pragma once

#include <mutex>
#include <string>
#include <string_view>

namespace tn::exec {

enum class OutputMode { raw, prefixed, json };

class Output {
public:
    explicit Output(OutputMode mode, int out_fd = 1, int err_fd = 2) : mode_(mode), out_fd_(out_fd), err_fd_(err_fd) {}
    OutputMode mode() const { return mode_; }

    // The per-host summary record (JSON mode only; other modes report through the logger).
    void summary(const std::string& host, int exit, long long duration_ms, const std::string& error);
    // A whole line (without its newline) of one host's stream; stream is "stdout" or "stderr".
    void line(const std::string& host, std::string_view stream, std::string_view text);
    // Raw bytes, for the single-host raw mode.
    void raw(bool is_err, std::string_view data);

private:
    OutputMode mode_;
    int out_fd_, err_fd_;
    std::mutex mu_;
};

// One host's view: splits chunks into lines for the prefixed and JSON modes. Not shared.
class HostOutput {
public:
    HostOutput(Output& out, std::string host) : out_(out), host_(std::move(host)) {}
    ~HostOutput() { flush(); }
    HostOutput(const HostOutput&) = delete;
    HostOutput& operator=(const HostOutput&) = delete;

    void out(std::string_view data) { feed(false, data); }
    void err(std::string_view data) { feed(true, data); }
    void flush();  // writes a final line that had no newline
    const std::string& host() const { return host_; }

private:
    void feed(bool is_err, std::string_view data);
    Output& out_;
    std::string host_;
    std::string pending_[2];
};

// Writes all of `data` to fd; false on an error (errno says which). Output's writers throw
// tn::Error(io) instead, so a closed stdout ends the remote command rather than being ignored.
bool write_all(int fd, std::string_view data);

}  // namespace tn::exec
