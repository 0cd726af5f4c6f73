// LogThrottle, the accept errors that need a pause, and the per-source key.
#include "relay/io_accept.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace tn::relay {

std::optional<std::uint64_t> LogThrottle::allow(SteadyClock::time_point now) {
    if (last_ && now - *last_ < every_) {
        ++held_;
        return std::nullopt;
    }
    last_ = now;
    auto held = held_;
    held_ = 0;
    return held;
}

bool is_resource_error(const error_code& ec) {
    if (ec.category() != boost::system::system_category()) return false;
    int e = ec.value();
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

bool has_bytes(tcp::socket& s) {
    std::uint8_t b = 0;
    return ::recv(s.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

std::string source_key(const asio::ip::address& a) {
    if (a.is_v4()) return a.to_string();
    auto v6 = a.to_v6();
    if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
    auto b = v6.to_bytes();
    for (std::size_t i = 8; i < b.size(); ++i) b[i] = 0;
    return asio::ip::address_v6(b).to_string() + "/64";
}

}  // namespace tn::relay
