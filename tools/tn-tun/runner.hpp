// The tn-tun runners: the server and client event loops, key commands, and status rendering.
#pragma once

#include <iosfwd>
#include <string>

#include "base/log.hpp"
#include "options.hpp"

namespace tn::tuntool {

int run_server(const ServerOptions& o, const log::Logger& log);
int run_client(const ClientOptions& o, const log::Logger& log);

// keygen: a new private key on `out`. pubkey: the public key of the private key read from `in`.
int keygen(std::ostream& out);
int pubkey(std::istream& in, std::ostream& out);

// The status document the control socket serves.
std::string render_status(const tun::ServerCore& core, const ServerOptions& o, bool json);

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
