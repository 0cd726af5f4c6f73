// The systemd seam (libsystemd): readiness and watchdog messages for Type=notify units.
// Outside systemd ($NOTIFY_SOCKET unset) every call is a no-op, so tools call them unconditionally.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace tn::sd {

// READY=1 once the daemon serves (its listeners bound, its device up), with an optional STATUS= line
// that `systemctl status` shows. True when a notification socket took the message.
bool notify_ready(std::string_view status = {});
// STOPPING=1: a stop was asked for; systemd then shows "deactivating" instead of a hang.
bool notify_stopping();
// WATCHDOG=1: the event loop is alive. Sent from the loop itself, so a hung loop misses its deadline.
bool notify_watchdog();
// How often to send WATCHDOG=1 (half of the unit's WatchdogSec=), nullopt when no watchdog is armed
// for this process.
std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace tn::sd
