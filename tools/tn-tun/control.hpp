// The Unix control socket of a server or client: one request ("json" or "text" for the status,
// "reload" on a server), one reply, then close; the line format is base/control_line.hpp's.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "base/unique_fd.hpp"

namespace tn::tuntool {

class ControlServer {
public:
    // Listens on `path` (mode 0600; a stale socket file is replaced). Throws tn::Error(io).
    explicit ControlServer(std::filesystem::path path);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    int fd() const { return fd_.get(); }
    // Accepts one waiting client and answers it with answer(request line, without its newline).
    void serve_one(const std::function<std::string(std::string_view request)>& answer);

private:
    std::filesystem::path path_;
    UniqueFd fd_;
};

// Sends one request line and returns the reply. Throws tn::Error(unavailable) when nothing listens there.
std::string control_request(const std::filesystem::path& path, const std::string& request);
// Asks a server or client for its status.
inline std::string query_status(const std::filesystem::path& path, bool json) {
    return control_request(path, json ? "json" : "text");
}

}  // namespace tn::tuntool
