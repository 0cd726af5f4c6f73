// AcceptLoop: the one accept loop of every relay listener (tn-route's control, remote_port, HTTP and
// dashboard listeners, tn-vnet's use ports and control sockets). An accept error never ends it: out
// of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) it waits on a timer, backing off from
// 50 ms to 1 s, and asks its owner to shed a connection still in setup; any other error re-arms at
// once. Only a cancel (the owner's stop() or close) ends it. Its warnings are rate-limited: a flood
// costs one log line per interval, not one per failed accept.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/backoff.hpp"
#include "relay/io_stream.hpp"

namespace tn::relay {

using SteadyClock = std::chrono::steady_clock;

// At most one line per `every`; a line let through says how many were held back since the last.
class LogThrottle {
public:
    explicit LogThrottle(SteadyClock::duration every = std::chrono::seconds(5)) : every_(every) {}
    // The count of suppressed lines to mention when this one may be written, else nullopt.
    std::optional<std::uint64_t> allow(SteadyClock::time_point now);

private:
    SteadyClock::duration every_;
    std::optional<SteadyClock::time_point> last_;
    std::uint64_t held_ = 0;
};

// An accept error that clears only when descriptors or memory free up: retrying at once would spin.
bool is_resource_error(const error_code& ec);

// True when the peer's first bytes are already waiting on `s` (a non-blocking MSG_PEEK): a client
// that speaks first (TLS ClientHello, the relay hello, an HTTP request) sends them right after its
// handshake, and tn-route's listeners (TCP_DEFER_ACCEPT) take a connection only once they are in;
// SetupGate lets such a connection push out one that has sent nothing.
bool has_bytes(tcp::socket& s);

// The address a per-source cap counts by: IPv4 exactly, IPv6 by its /64 (one host often holds a /64).
std::string source_key(const asio::ip::address& a);

template <class Protocol>
class AcceptLoop : public std::enable_shared_from_this<AcceptLoop<Protocol>> {
public:
    using Acceptor = typename Protocol::acceptor;
    using Socket = typename Protocol::socket;
    struct Hooks {
        std::function<void(Socket)> on_accept;
        std::function<void(const std::string&)> warn;  // already rate-limited
        std::function<void()> on_exhausted;            // optional: close something still in setup
    };

    static std::shared_ptr<AcceptLoop> start(std::shared_ptr<Acceptor> acc, Hooks hooks, std::string what) {
        auto l = std::shared_ptr<AcceptLoop>(new AcceptLoop(std::move(acc), std::move(hooks), std::move(what)));
        l->arm();
        return l;
    }
    // Closes the acceptor and ends the loop; no hook runs after this returns.
    void stop() {
        stopped_ = true;
        error_code ec;
        acc_->close(ec);
        timer_.cancel();
    }
    // From now on `may_accept` is asked before each accept: false pauses the loop (connections wait in
    // the kernel's listen queue) until the owner calls resume().
    void pause_unless(std::function<bool()> may_accept) { may_accept_ = std::move(may_accept); }
    // Accepts again after may_accept paused the loop (nothing if it is not paused).
    void resume() {
        if (!paused_ || stopped_) return;
        paused_ = false;
        next();
    }
    bool paused() const { return paused_; }
    Acceptor& acceptor() { return *acc_; }
    std::uint64_t resource_errors() const { return resource_errors_; }

private:
    // 50 ms doubling to 1 s, no jitter (one process, no herd to spread): tn::Backoff's rule.
    static constexpr BackoffPolicy kBackoff{std::chrono::milliseconds(50), std::chrono::milliseconds(1000), 2.0, 1.0, 1.0};

    AcceptLoop(std::shared_ptr<Acceptor> acc, Hooks hooks, std::string what)
        : acc_(std::move(acc)), hooks_(std::move(hooks)), what_(std::move(what)), timer_(acc_->get_executor()) {}

    void arm() {
        acc_->async_accept([self = this->shared_from_this()](error_code ec, Socket sock) { self->on_result(ec, std::move(sock)); });
    }
    void next() {
        if (may_accept_ && !may_accept_()) paused_ = true;
        else arm();
    }
    void on_result(error_code ec, Socket sock) {
        if (stopped_ || ec == asio::error::operation_aborted || !acc_->is_open()) return;
        if (!ec) {
            backoff_.reset();
            hooks_.on_accept(std::move(sock));
            if (!stopped_) next();
            return;
        }
        bool resource = is_resource_error(ec);
        if (auto held = throttle_.allow(SteadyClock::now()))
            hooks_.warn("accept on " + what_ + " failed: " + ec.message() +
                        (resource ? "; retrying in " + std::to_string(backoff_.base().count()) + " ms" : "") +
                        (*held ? " (" + std::to_string(*held) + " more like it not logged)" : ""));
        if (!resource) return arm();
        ++resource_errors_;
        if (hooks_.on_exhausted) hooks_.on_exhausted();
        if (stopped_) return;
        timer_.expires_after(backoff_.next(1.0));
        timer_.async_wait([self = this->shared_from_this()](error_code tec) {
            if (!tec && !self->stopped_) self->arm();
        });
    }

    std::shared_ptr<Acceptor> acc_;
    Hooks hooks_;
    std::function<bool()> may_accept_;
    std::string what_;
    asio::steady_timer timer_;
    LogThrottle throttle_;
    Backoff backoff_{kBackoff};
    std::uint64_t resource_errors_ = 0;
    bool stopped_ = false;
    bool paused_ = false;
};

using TcpAcceptLoop = AcceptLoop<tcp>;
using LocalAcceptLoop = AcceptLoop<asio::local::stream_protocol>;

}  // namespace tn::relay
