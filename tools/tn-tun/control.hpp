// The server's Unix control socket: one request line ("json" or "text"), one reply, then close.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

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
    // Accepts one waiting client and answers it with render(json).
    void serve_one(const std::function<std::string(bool json)>& render);

private:
    std::filesystem::path path_;
    UniqueFd fd_;
};

// Asks a server for its status. Throws tn::Error(unavailable) when nothing listens there.
std::string query_status(const std::filesystem::path& path, bool json);

}  // namespace tn::tuntool
