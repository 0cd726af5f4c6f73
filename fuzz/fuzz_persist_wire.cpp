// tn-exec --persist's socket protocol (tools/tn-exec/persist_wire) as the master reads it from a
// client (any process of the same user that reaches the socket): one frame through a real socket
// pair, then its payload read the way the master reads a run or transfer request.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "tools/tn-exec/persist_wire.hpp"

using namespace tn::exec;

namespace {

// What serve_run and serve_transfer read, in their order, with their caps (persist.cpp).
void read_request(const std::string& payload) {
    wire::Reader r{payload};
    std::string kind = r.str();
    if (kind == "run") {
        for (int i = 0; i < 4; ++i) (void)r.str();
        std::uint32_t nenv = r.u32();
        if (nenv > 1000) return;
        for (std::uint32_t i = 0; i < nenv; ++i) (void)r.str(), (void)r.str();
        (void)r.str(), (void)r.str();  // sudo token, can-ask-password
    } else {
        (void)r.u32();
        for (int side = 0; side < 2; ++side) {
            std::uint32_t n = r.u32();
            if (n > 100000) return;
            for (std::uint32_t i = 0; i < n; ++i) (void)r.str();
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 100000) return 0;  // stays inside the socket buffer: one process writes and reads
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) __builtin_trap();
    int big = 1 << 20;
    ::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    ::setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    std::size_t at = 0;
    while (at < size) {
        ssize_t n = ::write(sv[0], data + at, size - at);
        if (n <= 0) __builtin_trap();
        at += static_cast<std::size_t>(n);
    }
    ::shutdown(sv[0], SHUT_WR);  // a client that sent this much and went quiet (or away)
    try {
        std::vector<tn::UniqueFd> fds;
        std::string payload = wire::recv_frame(sv[1], &fds);
        if (payload.size() > wire::max_payload) __builtin_trap();
        read_request(payload);
    } catch (const tn::Error&) {
    }
    ::close(sv[0]);
    ::close(sv[1]);
    return 0;
}
