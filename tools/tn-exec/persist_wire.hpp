// The --persist socket's framing: "TNX4", a big-endian u32 payload length, the payload (u32 integers
// and u32-length strings), and up to 4 descriptors riding along with SCM_RIGHTS.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.hpp"
#include "base/unique_fd.hpp"

namespace tn::exec::wire {

// A request is a command line or a list of paths; nothing legitimate comes near this.
constexpr std::uint32_t max_payload = 1u << 20;
constexpr std::size_t max_fds = 4;

void put_u32(std::string& b, std::uint32_t v);
void put_str(std::string& b, std::string_view s);
// A list of strings: a u32 count, then each string.
void put_strs(std::string& b, const std::vector<std::string>& v);

// The peer framed its reply as another version of this protocol ("TNX" and another digit): a master
// from an older (or newer) tn-exec, which rejected the request unread and ran nothing.
class VersionMismatch : public Error {
public:
    VersionMismatch(const std::string& theirs);
    const std::string& theirs() const { return theirs_; }
    // A later version than ours: a newer tn-exec's master, which an older client must not replace.
    bool newer() const;

private:
    std::string theirs_;
};

// Reads a payload front to back; a short one throws tn::Error(data).
struct Reader {
    const std::string& b;
    std::size_t pos = 0;
    std::uint32_t u32();
    std::string str();
    // A list put_strs wrote; more than `max` entries throws tn::Error(data) "persist: too many WHAT".
    std::vector<std::string> strs(std::uint32_t max, const char* what);
};

// Sends one frame with `fds` (at most max_fds). Throws tn::Error(unavailable) when the peer is gone.
void send_frame(int sock, const std::string& payload, const std::vector<int>& fds);
// Reads one frame; descriptors that came with it are appended to `fds` (extra ones are closed).
// Throws tn::Error: unavailable when the peer closed, data for a foreign or oversized frame,
// VersionMismatch (data) for another version's frame.
std::string recv_frame(int sock, std::vector<UniqueFd>* fds);

// A connected socket, or an empty UniqueFd when nothing listens there.
UniqueFd try_connect(const std::filesystem::path& path);

}  // namespace tn::exec::wire
