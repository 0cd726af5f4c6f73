// Probe targets resolved in a helper thread (see probe_target.hpp).
#include "probe_target.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace tn::forward {

namespace {

std::optional<SockAddr> resolve(const std::string& host, std::uint16_t port, bool numeric_only) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (numeric_only ? AI_NUMERICHOST : 0);
    addrinfo* res = nullptr;
    std::string p = std::to_string(port);
    if (getaddrinfo(host.c_str(), p.c_str(), &hints, &res) != 0) return std::nullopt;
    SockAddr a;
    std::memcpy(&a.ss, res->ai_addr, res->ai_addrlen);
    a.len = res->ai_addrlen;
    freeaddrinfo(res);
    return a;
}

}  // namespace

ProbeTarget::ProbeTarget(std::string host, std::uint16_t port, Clock::time_point now)
    : host_(std::move(host)), port_(port) {
    addr_ = resolve(host_, port_, true);  // a numeric address needs no lookup: never a thread
    if (addr_) resolved_at_ = Clock::time_point::max();
    else start(now);
}

void ProbeTarget::start(Clock::time_point now) {
    resolved_at_ = now;
    std::packaged_task<std::optional<SockAddr>()> task([h = host_, p = port_] { return resolve(h, p, false); });
    pending_ = task.get_future();
    // Detached: an exit must not wait for a lookup that hangs; the task owns its shared state.
    std::thread(std::move(task)).detach();
}

void ProbeTarget::take_result() {
    if (!pending_.valid() || pending_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return;
    if (auto a = pending_.get()) addr_ = a;  // a failed lookup keeps the last good address
}

std::optional<SockAddr> ProbeTarget::address(Clock::time_point now) {
    take_result();
    // Without any address yet (the network is down, say), try again every second instead.
    auto every = addr_ ? std::chrono::duration_cast<Clock::duration>(refresh_after) : Clock::duration(std::chrono::seconds(1));
    if (!pending_.valid() && resolved_at_ != Clock::time_point::max() && now - resolved_at_ >= every) start(now);
    return addr_;
}

UniqueFd connect_to(const SockAddr& a) {
    UniqueFd fd(::socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return {};
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0 && errno != EINPROGRESS) return {};
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

}  // namespace tn::forward
