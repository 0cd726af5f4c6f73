// Keeps systemd's watchdog fed from an Asio event loop: a timer on that loop sends WATCHDOG=1 every
// half WatchdogSec=, so a loop that hangs (a handler that never returns) stops the pings and systemd
// restarts the unit. Here, not in lib/base, because Asio stays behind lib/relay/io_* (layer rules).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>

#include "base/sd_notify.hpp"

namespace tn::sd {

namespace detail {
// Each pending wait holds the pinger, so it lives exactly as long as the loop keeps running it.
struct WatchdogPinger : std::enable_shared_from_this<WatchdogPinger> {
    WatchdogPinger(boost::asio::io_context& io, std::chrono::microseconds every) : timer(io), every(every) {}
    void tick() {
        notify_watchdog();
        timer.expires_after(every);
        timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            if (!ec) self->tick();
        });
    }
    boost::asio::steady_timer timer;
    std::chrono::microseconds every;
};
}  // namespace detail

// Arms the pings when the unit has WatchdogSec=; a no-op otherwise. Call once the loop is set up; the
// pings stop when io stops (run() returns) or is destroyed.
inline void keep_watchdog(boost::asio::io_context& io) {
    if (auto every = watchdog_interval()) std::make_shared<detail::WatchdogPinger>(io, *every)->tick();
}

}  // namespace tn::sd
