// sd_notify(3) and sd_watchdog_enabled(3) from libsystemd: the protocol (a datagram to the socket in
// $NOTIFY_SOCKET, abstract or path, with credentials) is theirs to keep right, not ours.
#include "base/sd_notify.hpp"

#include <systemd/sd-daemon.h>

#include <cstdint>
#include <string>

namespace tn::sd {

namespace {
bool send(const std::string& state) {
    // unset_environment = 0: children (tn-watch's, tn-tun's hooks) must not inherit it, but they are
    // started with their own environment; keeping it lets the watchdog and STOPPING reach systemd later.
    return ::sd_notify(0, state.c_str()) > 0;
}
}  // namespace

bool notify_ready(std::string_view status) {
    std::string msg = "READY=1";
    if (!status.empty()) msg += "\nSTATUS=" + std::string(status);
    return send(msg);
}

bool notify_stopping() { return send("STOPPING=1"); }

bool notify_watchdog() { return send("WATCHDOG=1"); }

std::optional<std::chrono::microseconds> watchdog_interval() {
    std::uint64_t usec = 0;
    if (::sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
    return std::chrono::microseconds(usec / 2);
}

}  // namespace tn::sd
