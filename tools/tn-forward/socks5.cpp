// SOCKS5 request parsing for tn-forward -D.
#include "socks5.hpp"

#include <arpa/inet.h>

#include <algorithm>

namespace tn::forward {

namespace {
constexpr std::size_t max_buffer = 600;  // greeting <= 257, request <= 262: anything more is garbage
constexpr unsigned char ver = 5;
}  // namespace

std::string Socks5::fail(std::string why, std::string reply) {
    state_ = State::failed;
    error_ = std::move(why);
    return reply;
}

std::string Socks5::reply(bool ok) { return reply_code(ok ? 0x00 : 0x05); }

std::string Socks5::reply_code(unsigned char rep) {
    // VER REP RSV ATYP=IPv4 0.0.0.0:0 — clients ignore the bound address of a CONNECT.
    return std::string{char(ver), char(rep), 0, 1, 0, 0, 0, 0, 0, 0};
}

std::string Socks5::feed(std::string_view data) {
    if (state_ == State::failed) return {};
    buf_.append(data);
    if (state_ == State::done) return {};  // early payload: kept for take_leftover()
    if (buf_.size() > max_buffer) return fail("oversized SOCKS5 handshake", {});
    std::string out;
    if (state_ == State::greeting) {
        if (buf_.size() < 2) return out;
        auto b = reinterpret_cast<const unsigned char*>(buf_.data());
        if (b[0] != ver) return fail("not SOCKS5 (version " + std::to_string(b[0]) + ")", {});
        std::size_t n = b[1];
        if (buf_.size() < 2 + n) return out;
        bool no_auth = false;
        for (std::size_t i = 0; i < n; ++i) no_auth = no_auth || b[2 + i] == 0;
        if (!no_auth) return fail("client offers no method without authentication", std::string{char(ver), char(0xff)});
        buf_.erase(0, 2 + n);
        out = std::string{char(ver), 0};
        state_ = State::request;
    }
    if (state_ == State::request) {
        if (buf_.size() < 4) return out;
        auto b = reinterpret_cast<const unsigned char*>(buf_.data());
        if (b[0] != ver) return fail("bad request version", out + reply(false));
        if (b[1] != 1) return fail("only CONNECT is supported", out + reply_code(0x07));
        std::size_t need = 0;
        switch (b[3]) {
        case 1: need = 4 + 4 + 2; break;
        case 3:
            if (buf_.size() < 5) return out;
            need = 4 + 1 + b[4] + 2;
            break;
        case 4: need = 4 + 16 + 2; break;
        default: return fail("unknown address type", out + reply_code(0x08));
        }
        if (buf_.size() < need) return out;
        char text[INET6_ADDRSTRLEN] = {};
        if (b[3] == 1) {
            inet_ntop(AF_INET, b + 4, text, sizeof text);
            host_ = text;
        } else if (b[3] == 4) {
            inet_ntop(AF_INET6, b + 4, text, sizeof text);
            host_ = text;
        } else {
            std::string_view name(reinterpret_cast<const char*>(b + 5), b[4]);
            if (name.empty()) return fail("empty domain name", out + reply(false));
            // NUL would cut the name short in the C string handed to the SSH server, and control
            // bytes would reach log lines: no host has such a name. REP 1, general failure (RFC 1928
            // has no "bad name" code; a resolver-style 4 would invite retries).
            if (std::any_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
                return fail("domain name with NUL or control bytes", out + reply_code(0x01));
            host_ = name;
        }
        port_ = static_cast<std::uint16_t>((b[need - 2] << 8) | b[need - 1]);
        if (port_ == 0) return fail("port 0", out + reply(false));
        buf_.erase(0, need);
        state_ = State::done;
    }
    return out;
}

}  // namespace tn::forward
