// Where a reachability probe goes, resolved off the loop: while the network is down a DNS lookup can
// take seconds, and the loop that probes must keep serving signals, status and other forwards.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include "base/unique_fd.hpp"

namespace tn::forward {

struct SockAddr {
    sockaddr_storage ss{};
    socklen_t len = 0;
};

class ProbeTarget {
public:
    using Clock = std::chrono::steady_clock;
    ProbeTarget() = default;
    // A numeric address is known at once; a name starts resolving in a helper thread.
    ProbeTarget(std::string host, std::uint16_t port, Clock::time_point now);

    const std::string& host() const { return host_; }
    std::uint16_t port() const { return port_; }
    // The last address resolved, if any. A name older than refresh_after is resolved again in the
    // background meanwhile, so a server whose address moves is followed.
    std::optional<SockAddr> address(Clock::time_point now);
    bool resolving() const { return pending_.valid(); }

    static constexpr std::chrono::seconds refresh_after{30};

private:
    void take_result();
    void start(Clock::time_point now);
    std::string host_;
    std::uint16_t port_ = 0;
    std::optional<SockAddr> addr_;
    std::future<std::optional<SockAddr>> pending_;
    Clock::time_point resolved_at_{};
};

// A non-blocking connect to `a` in progress (empty on immediate failure).
UniqueFd connect_to(const SockAddr& a);

}  // namespace tn::forward
