// The tunnel's I/O shell around LinkCore: the SSH session, listeners, forwarded connections, TCP
// probes, the control socket and the poll(2) loop. Decisions are the core's; this carries them out.
#pragma once

#include <poll.h>

#include <chrono>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/log.hpp"
#include "base/signals.hpp"
#include "base/unique_fd.hpp"
#include "conn.hpp"
#include "control.hpp"
#include "events.hpp"
#include "link_core.hpp"
#include "probe_target.hpp"
#include "settings.hpp"
#include "ssh/forward.hpp"
#include "ssh/session.hpp"
#include "status.hpp"

namespace tn::forward {

using Clock = std::chrono::steady_clock;

struct Listener {
    Rule rule;
    UniqueFd fd;
};

// A non-blocking TCP connect standing in for "does this address answer": a SYN, no SSH handshake.
struct Probe {
    UniqueFd fd;  // empty: failed at once (answered as unanswered on the next turn), or still resolving
    Clock::time_point deadline;
    bool resolving = false;  // the connect starts when the target's address is in (before the deadline)
};

struct Connected {
    std::optional<ssh::Session> session;
    std::exception_ptr error;
};

class Tunnel {
public:
    Tunnel(const Settings& s, const log::Logger& log, const EventSink& ev, const std::function<Settings()>& reload,
           ControlServer* control, SignalFd& signals);
    int run();

private:
    // tunnel.cpp: the loop and carrying out the core's actions.
    std::optional<int> apply(Actions a, Clock::time_point now);
    void note(const Note& n);
    int poll_timeout(Clock::time_point now) const;
    void pump_all(const std::vector<pollfd>& fds, std::size_t ssh_index, std::size_t first_listener,
                  std::size_t first_conn, const std::vector<Conn*>& conn_of);

    // tunnel_io.cpp: the SSH session and sockets.
    void start_connect();
    Actions finish_connect(Clock::time_point now);
    void teardown();
    void start_probe(std::optional<Probe>& p, ProbeTarget& target, Clock::time_point now);
    void connect_probe(Probe& p, ProbeTarget& target, Clock::time_point now);
    std::optional<int> finish_probes(const std::vector<pollfd>& fds, std::size_t first_probe, Clock::time_point now);
    Actions progress_slot(Clock::time_point now);
    Actions bind_outcome(Clock::time_point now, const Rule& rule, ssh::Step rc, int bound);
    void send_keepalive();
    Actions request_bind(std::size_t index, Clock::time_point now);
    void start_cancels();
    Actions service(short ssh_revents, Clock::time_point now);
    void accept_on(Listener& l);
    void accept_remote();
    void open_listeners(const std::vector<Rule>& rules, bool at_start);
    Actions apply_reload(Clock::time_point now);
    Status status() const;
    std::string server() const { return session_ ? session_->session().endpoint() : s_.client.host; }

    Settings s_;
    const log::Logger& log_;
    const EventSink& ev_;
    const std::function<Settings()>& reload_;
    ControlServer* control_;  // null: no status socket
    SignalFd& signals_;
    LinkCore core_;

    std::list<Listener> listeners_;
    // Order matters: the session outlives every channel that refers to it.
    std::optional<ssh::ForwardSession> session_;
    std::list<Conn> conns_;

    std::shared_ptr<std::promise<Connected>> pending_;
    std::future<Connected> connecting_;
    std::optional<Probe> server_probe_, network_probe_;
    ProbeTarget server_target_, network_target_;
    // Set when this turn may have left work behind: libssh took packets off the socket while we served
    // channels (poll will not report those bytes again), or a channel read stopped at its turn quota.
    bool again_ = false;
    std::uint64_t packets_handled_ = 0;  // libssh's packet count when this turn's dopoll returned
    std::uint64_t rx_seen_ = 0;          // libssh's packet count when the core last heard of it
    // The request holding libssh's one global-request slot (see progress_slot), and cancels waiting
    // for it.
    struct SlotUse {
        enum class Kind { keepalive, bind, cancel } kind;
        Rule rule;
        int port = 0;
    };
    std::optional<SlotUse> slot_;
    std::deque<Cancel> cancels_;
    // For status, in wall-clock time: when the state last changed, the last loss.
    LinkCore::State last_state_ = LinkCore::State::waiting;
    std::chrono::system_clock::time_point state_since_ = std::chrono::system_clock::now();
    std::optional<std::chrono::system_clock::time_point> last_loss_;
    std::string last_loss_reason_;
};

}  // namespace tn::forward
