// The tn-tun runners: the server and client event loops, key commands, and status rendering.
#pragma once

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <vector>
#include <string>

#include "base/log.hpp"
#include "options.hpp"

namespace tn::tuntool {

int run_server(const ServerOptions& o, const log::Logger& log);
int run_client(const ClientOptions& o, const log::Logger& log);

// keygen: a new private key (`psk`: a pre-shared key) on `out`, or in `file` (created, 0600) when one
// is named; a warning when it goes to a terminal, and a redirected regular file is made 0600.
// pubkey: the public key of the private key read from `in`.
int keygen(std::ostream& out, const std::filesystem::path& file, const log::Logger& log, bool psk = false);
int pubkey(std::istream& in, std::ostream& out);
// Writes a base64 key to a new file, mode 0600 (never over an existing one). Throws tn::Error(io).
void write_key_file(const std::filesystem::path& file, const tun::Key& key);

// The status document the control socket serves.
std::string render_status(const tun::ServerCore& core, const ServerOptions& o, bool json);

// What a client's control socket reports.
struct ClientStatus {
    std::string tun, server, endpoint;
    bool connected = false;
    std::optional<tun::PushConfig> applied;
    std::optional<std::chrono::system_clock::time_point> last_handshake;
    tun::ClientStats stats;
    std::vector<std::string> routes;  // the routes this client added to the host
    std::optional<tun::Suite> suite;  // of the session in use
};
std::string render_client_status(const ClientStatus& s, bool json);

// The epoll timeout until a core's next_deadline(): 0 when it is due, at most a minute (nothing
// scheduled: the loop still wakes now and then), rounded up so a wakeup never comes early.
inline int ms_until(std::optional<tun::TimePoint> deadline, tun::TimePoint now) {
    if (!deadline) return 60000;
    if (*deadline <= now) return 0;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - now).count();
    return static_cast<int>(std::min<long long>(ms + 1, 60000));
}

// At most `burst` lines per `window` seconds; the rest are counted and summarised in the next line.
class LogLimiter {
public:
    LogLimiter(int burst, int window_s) : burst_(burst), window_(window_s) {}
    // Whether to log now; `suppressed` receives how many were dropped since the last logged line.
    bool allow(tun::TimePoint now, std::uint64_t& suppressed);

private:
    int burst_;
    std::chrono::seconds window_;
    tun::TimePoint start_{};
    int used_ = 0;
    std::uint64_t dropped_ = 0;
};

}  // namespace tn::tuntool
