// The Unix control socket of a server or client: one request ("json" or "text" for the status,
// "reload" on a server), one reply, then close; the line format and the reply's exit code are
// base/control_line.hpp's, as for tn-route and tn-vnet.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "base/control_line.hpp"
#include "base/unique_fd.hpp"

namespace tn::tuntool {

class ControlServer {
public:
    // Listens on `path` (base/control_socket.hpp: 0600 from its birth, in a private state dir; a stale
    // socket file is replaced). Throws tn::Error(config) for a state dir open to others, tn::Error(io).
    explicit ControlServer(std::filesystem::path path);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    int fd() const { return fd_.get(); }
    // Accepts one waiting client and answers it with answer(the request's one word); a request of
    // more or fewer words gets exit code 64 without asking.
    void serve_one(const std::function<ControlReply(std::string_view request)>& answer);

private:
    std::filesystem::path path_;
    UniqueFd fd_;
};

// Sends a one-word request and returns the reply's body. Throws tn::Error(unavailable) when nothing
// listens there, and tn::Error with the reply's code (its body the message) when the daemon refused.
std::string control_request(const std::filesystem::path& path, const std::string& request);
// Asks a server or client for its status.
inline std::string query_status(const std::filesystem::path& path, bool json) {
    return control_request(path, json ? "json" : "text");
}

}  // namespace tn::tuntool
