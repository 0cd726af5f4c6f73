// One forwarded connection: a local TCP socket, an SSH channel, and the byte pump between them with
// backpressure and half-close. The tunnel owns the loop; this owns what happens on one connection's turn.
#pragma once

#include <poll.h>

#include <cstdint>
#include <memory>
#include <string>

#include "base/log.hpp"
#include "base/unique_fd.hpp"
#include "socks5.hpp"
#include "ssh/forward.hpp"

namespace tn::forward {

struct Conn {
    enum class Phase { socks, connecting_local, opening_channel, open };
    Phase phase = Phase::open;
    UniqueFd sock;
    ssh::ForwardChannel chan;
    std::unique_ptr<Socks5> socks;
    std::string host;  // channel target (-L, -D) or local target (-R)
    std::uint16_t port = 0;
    std::string to_sock, to_chan;  // bytes waiting for a slow side: the backpressure buffers
    bool sock_eof = false, chan_eof = false, shut_wr = false, dead = false;
};

// Gives a connection whose target is known (host, port) its channel; the open completes in pump().
void start_channel(Conn& c, ssh::ForwardSession& session);

// The poll(2) events this connection waits for in its current phase.
short wanted_events(const Conn& c);

// One turn for one connection. `revents` are its socket's poll results; `ssh_ready` says the SSH side
// may have data for it. Returns true when it stopped at its read quota with data left (come back soon).
bool pump(Conn& c, short revents, bool ssh_ready, ssh::ForwardSession& session, const log::Logger& log);

}  // namespace tn::forward
