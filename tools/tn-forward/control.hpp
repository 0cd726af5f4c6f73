// tn-forward's control socket ($STATE/forward-KEY.sock): `tn-forward status` asks a running instance
// for its forwards and link state. One request (`status` or `status json`), one reply, then close, in
// the line format of every tn daemon (base/control_line.hpp).
#pragma once

#include <poll.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <list>
#include <string>
#include <vector>

#include "base/unique_fd.hpp"

namespace tn::forward {

class ControlServer {
public:
    using Clock = std::chrono::steady_clock;
    using Render = std::function<std::string(bool json)>;

    // Listens on `path` (base/control_socket.hpp: 0600 from its birth, in a private state dir; a stale
    // socket file is replaced: the instance lock, taken first, says no live instance owns it).
    // Throws tn::Error(config) for a state dir open to others, tn::Error(io) when it cannot listen.
    explicit ControlServer(std::filesystem::path path);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // The listening socket and every client still to send its request line, for the caller's poll.
    void add_pollfds(std::vector<pollfd>& fds) const;
    // Serves what the poll from add_pollfds (starting at fds[first]) found ready; never blocks: a
    // client that does not send its line within a second is dropped.
    void handle(const std::vector<pollfd>& fds, std::size_t first, Clock::time_point now, const Render& render);
    // When handle() must run again even if no fd is ready (a client's deadline), else max().
    Clock::time_point next_deadline() const;

private:
    struct Client {
        UniqueFd fd;
        std::string line;
        Clock::time_point deadline;
    };
    void accept_clients(Clock::time_point now);
    std::filesystem::path path_;
    UniqueFd fd_;
    std::list<Client> clients_;
};

// Asks the instance listening on `path`. Throws tn::Error(unavailable) when none answers there.
std::string query_status(const std::filesystem::path& path, bool json);

}  // namespace tn::forward
