// Port forwarding over one SSH session, non-blocking (libssh underneath, hidden): direct-tcpip
// channels (-L, -D), remote binds and the connections they bring (-R), keepalives, and the socket
// and packet count a poll(2) loop needs. tn-forward's loop drives it; nothing here blocks except where
// a function says so.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "ssh/handles.hpp"
#include "ssh/session.hpp"

namespace tn::ssh {

// The outcome of a call that may have to wait for the server: call it again on a later turn.
enum class Step { done, again, failed };

// One forwarded channel. Empty (false) until opened or accepted.
class ForwardChannel {
public:
    ForwardChannel() = default;
    explicit operator bool() const { return c_ != nullptr; }

    // -L/-D: the direct-tcpip open to host:port, started by ForwardSession::open_channel; call until
    // it is not `again`.
    Step open(const std::string& host, std::uint16_t port);
    // How many bytes the server lets us send now (0: wait; that is the backpressure).
    std::uint32_t window() const;
    // Bytes taken (<= size), or -1 when the channel broke.
    int write(const char* data, std::size_t size);
    // Bytes read (> 0), 0 when nothing is waiting, read_eof at the server's EOF, read_error when broken.
    static constexpr int read_eof = -1, read_error = -2;
    int read(char* buf, std::size_t size);
    void send_eof();
    bool closed() const;

private:
    friend class ForwardSession;
    explicit ForwardChannel(ChannelPtr c) : c_(std::move(c)) {}
    ChannelPtr c_;
};

class ForwardSession {
public:
    // Takes an authenticated session and puts it in non-blocking mode.
    explicit ForwardSession(Session s);
    ForwardSession(ForwardSession&&) noexcept;
    ForwardSession& operator=(ForwardSession&&) noexcept;
    ~ForwardSession();

    const Session& session() const;
    int fd() const;
    // Whether libssh holds bytes the socket would not take yet (poll for POLLOUT too).
    bool write_pending() const;
    // Reads and handles what the server sent, writes what is pending; never waits.
    void service();
    bool connected() const;
    // SSH packets received so far, whoever read them (service() or a channel call): proof of life.
    std::uint64_t packets_in() const;
    std::string error() const;

    // A channel to be opened with ForwardChannel::open (empty when libssh is out of memory).
    ForwardChannel new_channel();
    // The next connection the server brings for a remote bind, and the port it came in on.
    std::optional<ForwardChannel> accept(int& port);

    // libssh has one slot for global requests (tcpip-forward, its cancel, keepalives) and no queue:
    // a call while one is pending only completes that one. Callers keep one request at a time and
    // call again until it is not `again`.
    // -R: asks the server to listen on host:port; `bound` gets the port it chose for port 0. Port 0
    // blocks for one round trip: libssh reads the granted port from the last packet it handled, which
    // is the answer only when the call itself waited for it.
    Step listen(const std::string& host, int port, int& bound);
    Step cancel(const std::string& host, int port);
    // Sends keepalive@openssh.com (its answer is invisible: complete it with poll_keepalive).
    void send_keepalive();
    // Completes a pending keepalive: cancels a bind for a name nobody can have bound, which only
    // completes the pending request if there is one, else is refused by the server, harmlessly.
    Step poll_keepalive();
    // Drops the connection without the polite goodbye (the link may be dead: a flush would block).
    void drop();

private:
    struct State;
    std::unique_ptr<State> st_;
};

}  // namespace tn::ssh
