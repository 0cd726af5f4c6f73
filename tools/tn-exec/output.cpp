// Output formatting for tn-exec: raw, prefixed lines, JSON Lines.
#include "output.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.hpp"

#include "base/strings.hpp"

namespace tn::exec {

namespace {
// A remote that never prints a newline must not grow our buffer without bound: past this, the
// pending bytes go out as a line of their own.
constexpr std::size_t max_line = 64 * 1024;
}  // namespace

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

namespace {
// The reader of our output went away (`| head`): stop the remote command instead of running on.
void write_or_throw(int fd, std::string_view data) {
    if (!write_all(fd, data)) throw Error(ExitCode::io, std::string("cannot write output: ") + std::strerror(errno));
}
}  // namespace

void Output::summary(const std::string& host, int exit, long long duration_ms, const std::string& error) {
    if (mode_ != OutputMode::json) return;
    std::string rec = "{\"host\":" + json_quote(host) + ",\"exit\":" + std::to_string(exit) +
                      ",\"duration_ms\":" + std::to_string(duration_ms) +
                      ",\"error\":" + (error.empty() ? std::string("null") : json_quote(error)) + "}\n";
    std::lock_guard lock(mu_);
    write_all(out_fd_, rec);
}

void Output::line(const std::string& host, std::string_view stream, std::string_view text) {
    std::string rec;
    int fd = out_fd_;
    if (mode_ == OutputMode::json) {
        rec = "{\"host\":" + json_quote(host) + ",\"stream\":" + json_quote(stream) + ",\"line\":" + json_quote(text) + "}\n";
    } else {
        rec.reserve(host.size() + text.size() + 3);
        rec.append(host).append(": ").append(text).append("\n");
        if (stream == "stderr") fd = err_fd_;
    }
    std::lock_guard lock(mu_);
    write_or_throw(fd, rec);
}

void Output::raw(bool is_err, std::string_view data) { write_or_throw(is_err ? err_fd_ : out_fd_, data); }

void HostOutput::feed(bool is_err, std::string_view data) {
    if (out_.mode() == OutputMode::raw) {
        out_.raw(is_err, data);
        return;
    }
    auto& pend = pending_[is_err ? 1 : 0];
    std::string_view stream = is_err ? "stderr" : "stdout";
    while (!data.empty()) {
        auto nl = data.find('\n');
        if (nl == std::string_view::npos) {
            pend.append(data);
            if (pend.size() >= max_line) {
                out_.line(host_, stream, pend);
                pend.clear();
            }
            return;
        }
        if (pend.empty()) {
            out_.line(host_, stream, data.substr(0, nl));
        } else {
            pend.append(data.substr(0, nl));
            out_.line(host_, stream, pend);
            pend.clear();
        }
        data.remove_prefix(nl + 1);
    }
}

void HostOutput::flush() {
    for (int i = 0; i < 2; ++i) {
        if (pending_[i].empty()) continue;
        out_.line(host_, i ? "stderr" : "stdout", pending_[i]);
        pending_[i].clear();
    }
}

}  // namespace tn::exec
