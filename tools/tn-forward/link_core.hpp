// tn-forward's link state machine without I/O: when to connect, probe, send keepalives, request remote
// binds, declare a loss and back off. The tunnel (tunnel.cpp) feeds it what happened and `now`, and
// carries out the actions it returns; tests drive it with a fake clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/backoff.hpp"
#include "settings.hpp"

namespace tn::forward {

using TimePoint = std::chrono::steady_clock::time_point;

struct CoreSettings {
    std::vector<Rule> rules;
    std::chrono::seconds keepalive{5};
    int keepalive_count = 3;
    std::optional<std::string> probe;  // --probe HOST:PORT (for messages; the tunnel probes it)
    std::chrono::seconds backoff_max{30};
    bool once = false;
};

// What the tunnel logs and, with --events, reports.
struct Note {
    enum class Type { connected, forward_up, lost, reconnecting, bind_refused, all_up };
    Type type;
    std::string text;    // forward (forward_up, bind_refused) or reason (lost)
    long long value = 0;  // down_ms (connected), port (forward_up), delay_ms (reconnecting), refusals
};

struct Cancel {
    Rule rule;
    int port = 0;  // the bound port to cancel on the server
};

struct Actions {
    bool teardown = false;       // drop the session (first, before anything below)
    bool connect = false;        // start an attempt; one still in flight is abandoned
    bool probe_server = false;   // start a TCP probe of the SSH server; answer with on_server_probe
    bool probe_network = false;  // start a TCP probe of --probe; answer with on_network_probe
    bool keepalive = false;
    std::vector<std::size_t> binds;  // remote forwards to request (index into remotes()); on_bind
    std::vector<Cancel> cancels;     // remote forwards a reload removed
    std::vector<Rule> open_listeners, close_listeners;  // -L/-D forwards a reload added or removed
    std::optional<int> exit;         // the loop ends with this code (--once after a loss)
    std::vector<Note> notes;
};

struct RemoteState {
    Rule rule;
    bool up = false;
    int bound_port = 0;
    int failures = 0;
    TimePoint next_try{};
};

enum class BindOutcome { granted, refused, busy, closed };

class LinkCore {
public:
    enum class State { waiting, connecting, connected, done };
    static constexpr std::chrono::milliseconds probe_every{250};     // TCP probes while not connected
    static constexpr std::chrono::milliseconds bind_retry_every{250};  // a dead session may hold a -R port
    static constexpr std::chrono::milliseconds busy_retry{20};        // the request slot was taken

    LinkCore(CoreSettings s, std::uint32_t seed);

    Actions start(TimePoint now);
    Actions on_connected(TimePoint now);
    Actions on_connect_failed(TimePoint now);  // fatal errors (auth, config) never get here
    Actions on_server_probe(TimePoint now, bool answered);
    Actions on_network_probe(TimePoint now, bool answered);
    Actions on_heard(TimePoint now);  // anything arrived from the server
    Actions on_closed(TimePoint now, const std::string& why);
    Actions on_bind(TimePoint now, std::size_t index, BindOutcome outcome, int bound_port);
    Actions reload(TimePoint now, const std::vector<Rule>& rules);
    Actions tick(TimePoint now);
    TimePoint next_deadline() const;

    State state() const { return state_; }
    const std::vector<Rule>& rules() const { return s_.rules; }
    const std::vector<RemoteState>& remotes() const { return remotes_; }
    int connects() const { return connects_; }
    int unanswered() const { return unanswered_; }

private:
    void lose(TimePoint now, const std::string& why, Actions& a);
    void schedule_retry(TimePoint now, bool after_failure, Actions& a);
    void begin_attempt(TimePoint now, Actions& a);
    void due_binds(TimePoint now, Actions& a);
    void check_all_up(Actions& a);

    CoreSettings s_;
    std::mt19937 rng_;
    Backoff backoff_;
    State state_ = State::waiting;
    std::vector<RemoteState> remotes_;
    TimePoint next_attempt_{}, next_probe_{}, last_rx_{}, last_keepalive_{};
    std::optional<TimePoint> lost_at_;
    bool probe_in_flight_ = false, probe_failed_ = false, net_probe_in_flight_ = false;
    bool announced_up_ = false;
    int unanswered_ = 0, net_failures_ = 0, connects_ = 0;
};

}  // namespace tn::forward
