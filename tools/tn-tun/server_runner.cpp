// The server event loop: one thread, epoll over the UDP socket, the TUN device, the control socket
// and a signalfd; batched UDP I/O; all decisions in tun::ServerCore.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.hpp"
#include "base/runtime_dir.hpp"
#include "base/signals.hpp"
#include "control.hpp"
#include "io_tun.hpp"
#include "io_udp.hpp"
#include "runner.hpp"

namespace tn::tuntool {
namespace {

// How many batches one readiness event may take before the other direction gets its turn.
constexpr int rounds_per_wakeup = 8;

class Epoll {
public:
    Epoll() : fd_(::epoll_create1(EPOLL_CLOEXEC)) {
        if (!fd_) throw Error(ExitCode::io, std::string("epoll: ") + std::strerror(errno));
    }
    void add(int fd) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (::epoll_ctl(fd_.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
            throw Error(ExitCode::io, std::string("epoll_ctl: ") + std::strerror(errno));
    }
    int wait(epoll_event* evs, int max, int timeout_ms) {
        int n = ::epoll_wait(fd_.get(), evs, max, timeout_ms);
        return n < 0 ? 0 : n;
    }

private:
    UniqueFd fd_;
};

int ms_until(tun::TimePoint deadline, tun::TimePoint now) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    return static_cast<int>(std::clamp<long long>(ms + 1, 0, 60000));
}

}  // namespace

int run_server(const ServerOptions& o, const log::Logger& log) {
    auto lock = FileLock::try_acquire(ensure_state_dir() / ("tn-tun-" + o.tun + ".lock"));
    if (!lock) throw Error(ExitCode::temp_fail, "another tn-tun server already runs on " + o.tun);
    SignalFd signals;
    tun::ServerCore core(o.core);
    TunDevice tun(o.tun);
    tun.configure(core.server_address(), o.core.subnet.prefix, o.core.mtu);
    UdpSocket udp(o.listen);
    ControlServer control(control_socket_path(o.tun));
    Epoll ep;
    for (int fd : {udp.fd(), tun.fd(), control.fd(), signals.fd()}) ep.add(fd);
    log.info("server up listen=", udp.local(), " tun=", tun.name(), " address=", tun::ipv4_str(core.server_address()),
             "/", int(o.core.subnet.prefix), " peers=", o.core.peers.size(),
             " public_key=", tun::key_to_base64(o.core.key.pub));

    LogLimiter reject_log(5, 10);
    auto handle = [&](const tun::Actions& a, tun::TimePoint now) {
        if (!a.to_tun.empty()) {
            // The TUN queue is rarely full; when it is, the packet is dropped, as a router would.
            if (::write(tun.fd(), a.to_tun.data(), a.to_tun.size()) < 0 && errno != EAGAIN)
                log.debug("tun write: ", std::strerror(errno));
        }
        if (!a.send.empty()) udp.queue(a.send, a.send_to);
        if (a.rejected) {
            std::uint64_t suppressed = 0;
            if (reject_log.allow(now, suppressed))
                log.warn("handshake rejected source=", a.rejected->source.str(), " reason=", a.rejected->reason,
                         suppressed ? " (" + std::to_string(suppressed) + " more not logged)" : "");
        }
        if (a.established)
            log.info("peer up name=", a.established->config.name, " address=", tun::ipv4_str(a.established->address),
                     " endpoint=", a.established->endpoint ? a.established->endpoint->str() : "?");
    };

    epoll_event evs[8];
    for (;;) {
        auto now = tun::Clock::now();
        int n = ep.wait(evs, 8, ms_until(core.tick(now), now));
        for (int e = 0; e < n; ++e) {
            int fd = evs[e].data.fd;
            now = tun::Clock::now();
            if (fd == signals.fd()) {
                while (auto s = signals.take()) {
                    if (*s == SIGHUP) {
                        log.info("SIGHUP: tn-tun applies config changes on restart; nothing reloaded");
                        continue;
                    }
                    log.info("stopping on ", strsignal(*s));
                    return 0;
                }
            } else if (fd == udp.fd()) {
                auto wall = std::chrono::system_clock::now();
                for (int r = 0; r < rounds_per_wakeup; ++r) {
                    std::size_t got = udp.receive();
                    for (std::size_t i = 0; i < got; ++i)
                        handle(core.on_datagram(udp.rx(i), udp.rx_len(i), udp.rx_from(i), now, wall, udp.scratch(i)),
                               now);
                    udp.flush();
                    if (got < UdpSocket::batch) break;
                }
            } else if (fd == tun.fd()) {
                for (int r = 0; r < rounds_per_wakeup; ++r) {
                    std::size_t i = 0;
                    for (; i < UdpSocket::batch; ++i) {
                        std::uint8_t* slot = udp.tx_slot(i);
                        ssize_t len = ::read(tun.fd(), slot + tun::transport_header_len, tun::max_inner_len);
                        if (len <= 0) break;
                        handle(core.on_tun(slot, static_cast<std::size_t>(len), now), now);
                    }
                    udp.flush();  // before the slots are reused
                    if (i < UdpSocket::batch) break;
                }
            } else if (fd == control.fd()) {
                control.serve_one([&](bool json) { return render_status(core, o, json); });
            }
        }
    }
}

}  // namespace tn::tuntool
