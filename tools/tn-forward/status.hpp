// What `tn-forward status` reports about one running instance, and its text and JSON renderings.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace tn::forward {

struct ForwardStatus {
    std::string forward;  // "-L 8080:127.0.0.1:80"
    bool up = false;
    int port = 0;  // the bound port (a -R with port 0 gets one from the server)
};

struct Status {
    using Time = std::chrono::system_clock::time_point;
    long pid = 0;
    std::string instance;  // the config file, or the command line's server and forwards
    std::string server;
    std::string state;  // "connecting", "connected" or "waiting" (backing off before the next attempt)
    Time since{};       // when it entered that state
    int reconnects = 0;  // connections made after the first one
    std::optional<Time> last_loss;
    std::string last_loss_reason;
    std::vector<ForwardStatus> forwards;
};

std::string render_text(const Status& s);
std::string render_json(const Status& s);  // one JSON object, no trailing newline

// `tn-forward status` output for several instances: text blocks, or {"instances":[...]}.
std::string render_all(const std::vector<std::string>& replies, bool json);

}  // namespace tn::forward
