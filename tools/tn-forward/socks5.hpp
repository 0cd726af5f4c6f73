// The SOCKS5 server side of -D as a pure parser: bytes in, a reply or a CONNECT target out (RFC 1928,
// no authentication, CONNECT only). Fuzz-friendly: any input yields a result, never a crash.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tn::forward {

class Socks5 {
public:
    enum class State { greeting, request, done, failed };

    // Feeds bytes from the client; returns bytes to send back (possibly empty). After `done`, target()
    // holds the destination and any bytes beyond the request are in leftover().
    std::string feed(std::string_view data);
    State state() const { return state_; }
    const std::string& host() const { return host_; }
    std::uint16_t port() const { return port_; }
    const std::string& error() const { return error_; }
    std::string take_leftover() { return std::move(buf_); }

    // The reply to send once the outbound connection succeeded (true) or failed.
    static std::string reply(bool ok);
    // A reply with this REP code (RFC 1928 §6: 1 general failure, 5 refused, 7 command, 8 address type).
    static std::string reply_code(unsigned char rep);

private:
    std::string fail(std::string why, std::string reply);
    State state_ = State::greeting;
    std::string buf_;
    std::string host_;
    std::uint16_t port_ = 0;
    std::string error_;
};

}  // namespace tn::forward
