// SignalFd implementation over signalfd(2).
#include "base/signals.hpp"

#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.hpp"

namespace tn {

SignalFd::SignalFd(std::initializer_list<int> signals) {
    sigemptyset(&set_);
    for (int s : signals) sigaddset(&set_, s);
    if (pthread_sigmask(SIG_BLOCK, &set_, &old_) != 0) throw Error(ExitCode::io, "cannot block signals");
    fd_.reset(::signalfd(-1, &set_, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!fd_) {
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
        throw Error(ExitCode::io, std::string("signalfd: ") + std::strerror(errno));
    }
}

SignalFd::~SignalFd() {
    fd_.reset();
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

std::optional<int> SignalFd::take() {
    signalfd_siginfo info{};
    for (;;) {
        ssize_t n = ::read(fd_.get(), &info, sizeof info);
        if (n == static_cast<ssize_t>(sizeof info)) return static_cast<int>(info.ssi_signo);
        if (n < 0 && errno == EINTR) continue;
        return std::nullopt;
    }
}

}  // namespace tn
