// accept_forever: tn-vnet's accept loop for use ports and the control socket. An accept error never
// ends it: out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) it waits on a timer, backing
// off from 50 ms to 1 s, since retrying at once would spin on an error that clears only when
// connections end; any other error re-arms at once. Only a cancel or a closed acceptor ends it.
// Warnings are rate-limited to one line per second, with the count held back.
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "relay/io_stream.hpp"

namespace tn::vnet {

namespace accept_detail {
inline bool is_resource_error(const relay::error_code& ec) {
    return ec == relay::asio::error::no_descriptors || ec == relay::asio::error::no_buffer_space ||
           ec == relay::asio::error::no_memory || ec.value() == ENFILE;
}

template <class Acceptor, class OnAccept>
struct Loop : std::enable_shared_from_this<Loop<Acceptor, OnAccept>> {
    using Clock = std::chrono::steady_clock;
    Loop(std::shared_ptr<Acceptor> a, OnAccept f, std::function<void(const std::string&)> w, std::string what)
        : acc(std::move(a)), on_accept(std::move(f)), warn(std::move(w)), what(std::move(what)), timer(acc->get_executor()) {}

    void arm() {
        acc->async_accept([self = this->shared_from_this()](relay::error_code ec, typename Acceptor::protocol_type::socket s) {
            self->done(ec, std::move(s));
        });
    }
    void done(relay::error_code ec, typename Acceptor::protocol_type::socket s) {
        if (ec == relay::asio::error::operation_aborted || !acc->is_open()) return;
        if (!ec) {
            backoff = kFirst;
            if (!on_accept(std::move(s))) return;  // the owner let go of this listener
            return arm();
        }
        bool resource = is_resource_error(ec);
        auto now = Clock::now();
        if (now - last_warn >= std::chrono::seconds(1)) {
            warn("accept on " + what + " failed: " + ec.message() +
                 (resource ? "; retrying in " + std::to_string(backoff.count()) + " ms" : "") +
                 (held ? " (" + std::to_string(held) + " more like it not logged)" : ""));
            last_warn = now;
            held = 0;
        } else {
            ++held;
        }
        if (!resource) return arm();
        timer.expires_after(backoff);
        backoff = std::min(backoff * 2, kMax);
        timer.async_wait([self = this->shared_from_this()](relay::error_code tec) {
            if (!tec && self->acc->is_open()) self->arm();
        });
    }

    static constexpr std::chrono::milliseconds kFirst{50}, kMax{1000};
    std::shared_ptr<Acceptor> acc;
    OnAccept on_accept;
    std::function<void(const std::string&)> warn;
    std::string what;
    relay::asio::steady_timer timer;
    std::chrono::milliseconds backoff = kFirst;
    Clock::time_point last_warn{};
    std::uint64_t held = 0;
};
}  // namespace accept_detail

// Accepts on `acc` until it is closed; `on_accept(socket)` returns false to end the loop.
template <class Acceptor, class OnAccept>
void accept_forever(std::shared_ptr<Acceptor> acc, OnAccept on_accept, std::function<void(const std::string&)> warn,
                    std::string what) {
    auto loop = std::make_shared<accept_detail::Loop<Acceptor, OnAccept>>(std::move(acc), std::move(on_accept), std::move(warn),
                                                                          std::move(what));
    loop->arm();
}

}  // namespace tn::vnet
