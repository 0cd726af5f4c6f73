// The signal watcher thread behind Interrupts.
#include "interrupt.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "base/error.hpp"

namespace tn::exec {

Interrupts::Interrupts()
    : signals_({SIGINT, SIGTERM, SIGHUP}), event_(::eventfd(0, EFD_CLOEXEC)), stop_(::eventfd(0, EFD_CLOEXEC)) {
    if (!event_ || !stop_) throw Error(ExitCode::io, std::string("eventfd: ") + std::strerror(errno));
    watcher_ = std::thread([this] {
        for (;;) {
            pollfd p[2] = {{signals_.fd(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
            if (::poll(p, 2, -1) < 0 && errno != EINTR) return;
            if (p[1].revents & POLLIN) return;
            if (p[0].revents & POLLIN) {
                if (auto s = signals_.take()) {
                    int expected = 0;
                    signo_.compare_exchange_strong(expected, *s);
                    std::uint64_t one = 1;
                    (void)!::write(event_.get(), &one, sizeof one);
                }
            }
        }
    });
}

Interrupts::~Interrupts() {
    std::uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof one);
    watcher_.join();
}

std::string Interrupts::signal_name() const {
    switch (signo_.load()) {
    case SIGTERM: return "TERM";
    case SIGHUP: return "HUP";
    default: return "INT";
    }
}

}  // namespace tn::exec
