// The tn-forward event loop: poll(2) over the SSH socket, listeners, forwarded sockets and a signalfd;
// libssh in non-blocking mode; connects in a helper thread so signals are served within 2 s.
#include "tunnel.hpp"

#include <libssh/libssh.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <list>
#include <memory>
#include <random>
#include <string_view>
#include <thread>

#include "base/backoff.hpp"
#include "base/error.hpp"
#include "base/signals.hpp"
#include "base/unique_fd.hpp"
#include "conn.hpp"
#include "control.hpp"
#include "sockets.hpp"
#include "status.hpp"
#include "ssh/session.hpp"

// Exported by libssh 0.10 but missing from its headers (FACTS.md): sends keepalive@openssh.com.
extern "C" int ssh_send_keepalive(ssh_session session);

namespace tn::forward {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds probe_every{250};     // cheap TCP probes while backing off
constexpr milliseconds bind_retry_every{250};  // a dead session may still hold a -R port
// A name no server can have bound (RFC 2606): cancelling it polls libssh's global-request slot.
constexpr const char* slot_poll_host = "keepalive.tn-forward.invalid";

struct EventDeleter {
    void operator()(ssh_event_struct* e) const { ssh_event_free(e); }
};

struct Listener {
    Rule rule;
    UniqueFd fd;
};

struct RemoteBind {
    Rule rule;
    bool up = false;
    int bound_port = 0;
    int failures = 0;
    Clock::time_point next_try{};
};

struct Connected {
    std::optional<ssh::Session> session;
    std::exception_ptr error;
};

class Tunnel {
public:
    Tunnel(const Settings& s, const log::Logger& log, const EventSink& ev, const std::function<Settings()>& reload,
           ControlServer* control)
        : s_(s), log_(log), ev_(ev), reload_(reload), control_(control),
          backoff_(milliseconds(500), milliseconds(1000LL * s.backoff_max_s)), rng_(std::random_device{}()) {}

    int run();

private:
    void open_listeners(const std::vector<Rule>& rules);
    void start_connect();
    int finish_connect();  // -1: keep going; otherwise an exit code
    void on_lost(const std::string& why);
    void schedule_retry(bool after_failure);
    void try_remote_binds(Clock::time_point now);
    void service(short ssh_revents, Clock::time_point now);
    void accept_on(Listener& l);
    void accept_remote();
    void apply_reload();
    void check_liveness(ssh_session raw, Clock::time_point now);
    bool slot_free(ssh_session raw, bool wait);
    Status status() const;
    bool all_up() const;
    std::string server() const { return session_ ? session_->endpoint() : s_.client.host; }

    Settings s_;
    const log::Logger& log_;
    const EventSink& ev_;
    const std::function<Settings()>& reload_;
    ControlServer* control_;  // null: no status socket
    Backoff backoff_;
    std::mt19937 rng_;

    std::list<Listener> listeners_;
    std::list<RemoteBind> remotes_;
    // Order matters: the session outlives the event and every channel that refers to it, and the
    // packet counter (libssh writes to it) outlives the session.
    ssh_counter_struct received_{};
    std::optional<ssh::Session> session_;
    std::unique_ptr<ssh_event_struct, EventDeleter> event_;
    std::list<Conn> conns_;

    // done: --once saw its loss and the loop ends with 75.
    enum class State { waiting, connecting, connected, done } state_ = State::waiting;
    std::shared_ptr<std::promise<Connected>> pending_;
    std::future<Connected> connecting_;
    Clock::time_point next_attempt_{}, next_probe_{}, last_rx_{}, last_keepalive_{}, lost_at_{};
    bool probe_failed_ = false, ever_connected_ = false, announced_up_ = false;
    // Set when this turn may have left work behind: libssh took packets off the socket while we served
    // channels (poll will not report those bytes again), or a channel read stopped at its turn quota.
    bool again_ = false;
    std::uint64_t packets_handled_ = 0;  // libssh's packet count when this turn's dopoll returned
    int probe_failures_ = 0;
    // Liveness as OpenSSH's ServerAlive*: keepalives sent since the server was last heard from, and
    // libssh's packet count when it was.
    int unanswered_ = 0;
    std::uint64_t rx_seen_ = 0;
    // Whether libssh's one global-request slot may hold a request (a keepalive) not yet completed.
    bool slot_taken_ = false;
    // For status: connections made, when the state last changed, the last loss.
    int connects_ = 0;
    std::chrono::system_clock::time_point state_since_ = std::chrono::system_clock::now();
    std::optional<std::chrono::system_clock::time_point> last_loss_;
    std::string last_loss_reason_;
    std::string probe_host_;
    std::uint16_t probe_port_ = 22;
};

void Tunnel::open_listeners(const std::vector<Rule>& rules) {
    for (const auto& r : rules) {
        if (r.kind == Kind::remote) {
            remotes_.push_back(RemoteBind{r});
            continue;
        }
        listeners_.push_back(Listener{r, listen_tcp(r.listen_host(), r.spec.port)});
        log_.debug("listening for ", r.str());
    }
}

void Tunnel::start_connect() {
    auto cfg = s_.client;
    std::vector<Rule> remote_rules;
    for (auto& r : remotes_) r.up = false;
    pending_ = std::make_shared<std::promise<Connected>>();
    connecting_ = pending_->get_future();
    // A detached thread: if a signal ends us mid-handshake, exiting must not wait for the handshake.
    std::thread([p = pending_, cfg] {
        Connected out;
        try {
            auto s = ssh::Session::connect(cfg);
            if (!s.authenticate({.agent = true, .identities = true, .password = std::nullopt}))
                throw Error(ExitCode::no_perm, "authentication refused by " + s.endpoint() + " (tn-forward uses keys only)");
            out.session.emplace(std::move(s));
        } catch (...) {
            out.error = std::current_exception();
        }
        p->set_value(std::move(out));
    }).detach();
    state_ = State::connecting;
    state_since_ = std::chrono::system_clock::now();
    probe_failed_ = false;
    next_probe_ = Clock::now() + probe_every;
    log_.debug("connecting to ", s_.client.host);
}

int Tunnel::finish_connect() {
    Connected c = connecting_.get();
    pending_.reset();
    if (c.error) {
        bool no_tcp = false;
        try {
            std::rethrow_exception(c.error);
        } catch (const Error& e) {
            if (e.code() == ExitCode::no_perm || e.code() == ExitCode::config) throw;  // never loop on these
            log_.warn(e.what());
            no_tcp = tcp_unanswered(e.what());
        }
        if (s_.once) return to_int(ExitCode::temp_fail);
        schedule_retry(true);
        // An attempt that found nobody listening counts as a failed probe: when the next probe is
        // answered the server is back, and we go at once instead of sleeping out the backoff.
        probe_failed_ = no_tcp;
        return -1;
    }
    session_ = std::move(c.session);
    probe_host_ = session_->host();
    probe_port_ = static_cast<std::uint16_t>(session_->port());
    ssh_session raw = session_->raw();
    ssh_set_blocking(raw, 0);
    ssh_set_counters(raw, nullptr, &received_);
    event_.reset(ssh_event_new());
    ssh_event_add_session(event_.get(), raw);
    state_ = State::connected;
    state_since_ = std::chrono::system_clock::now();
    ++connects_;
    ever_connected_ = true;
    announced_up_ = false;
    last_rx_ = last_keepalive_ = Clock::now();
    probe_failures_ = 0;
    unanswered_ = 0;
    rx_seen_ = received_.in_packets;
    slot_taken_ = false;
    auto since = lost_at_ == Clock::time_point{} ? 0LL
                 : std::chrono::duration_cast<milliseconds>(Clock::now() - lost_at_).count();
    log_.info("connected to ", session_->endpoint(), since ? " after " + std::to_string(since) + " ms down" : "");
    ev_.emit("connected", {{"server", session_->endpoint()}}, {{"down_ms", since}});
    for (const auto& l : listeners_) {
        log_.info("forward up ", l.rule.str());
        ev_.emit("forward_up", {{"forward", l.rule.str()}}, {{"port", l.rule.spec.port}});
    }
    for (auto& r : remotes_) r.next_try = Clock::now();
    try_remote_binds(Clock::now());
    again_ = true;  // the server may have opened channels while the binds blocked
    return -1;
}

void Tunnel::try_remote_binds(Clock::time_point now) {
    ssh_session raw = session_->raw();
    bool due = false;
    for (const auto& r : remotes_) due = due || (!r.up && now >= r.next_try);
    if (!due) return;
    // A keepalive still holds the slot: a request now would not be sent, and its answer would be the
    // keepalive's. Look again shortly (its reply also wakes the loop).
    if (!slot_free(raw, false)) {
        for (auto& r : remotes_) r.next_try = std::max(r.next_try, now + milliseconds(20));
        return;
    }
    for (auto& r : remotes_) {
        if (r.up || now < r.next_try) continue;
        // Blocking for one round trip: simpler than threading the request through the loop, and rare.
        ssh_set_blocking(raw, 1);
        int bound = 0;
        std::string host = r.rule.listen_host();
        int rc = ssh_channel_listen_forward(raw, host.c_str(), r.rule.spec.port, &bound);
        ssh_set_blocking(raw, 0);
        if (rc == SSH_OK) {
            r.up = true;
            r.bound_port = r.rule.spec.port != 0 ? r.rule.spec.port : bound;
            if (r.failures > 0) log_.info("remote port ", r.bound_port, " is free again after ", r.failures, " refusals");
            r.failures = 0;
            log_.info("forward up ", r.rule.str(), " remote=", host.empty() ? "*" : host, ":", r.bound_port);
            ev_.emit("forward_up", {{"forward", r.rule.str()}}, {{"port", r.bound_port}});
        } else {
            if (!ssh_is_connected(raw)) return on_lost("connection closed while requesting " + r.rule.str());
            // Usually the server still holds the port for our previous, dead session: it frees it once it
            // notices. Say so once, then quietly every 40 tries (10 s).
            if (r.failures % 40 == 0)
                log_.warn("server refused ", r.rule.str(), " (port in use, perhaps by our previous session); retrying");
            ++r.failures;
            r.next_try = now + bind_retry_every;
        }
    }
    if (!announced_up_ && all_up()) {
        announced_up_ = true;
        log_.info("all ", listeners_.size() + remotes_.size(), " forwards up via ", session_->endpoint());
    }
}

Status Tunnel::status() const {
    Status st;
    st.pid = static_cast<long>(::getpid());
    st.instance = s_.config_file;
    if (st.instance.empty()) {
        st.instance = "command line:";
        for (const auto& r : s_.rules) st.instance += " " + r.str();
    }
    st.server = server();
    st.state = state_ == State::connected ? "connected" : state_ == State::connecting ? "connecting" : "waiting";
    st.since = state_since_;
    st.reconnects = connects_ > 0 ? connects_ - 1 : 0;
    st.last_loss = last_loss_;
    st.last_loss_reason = last_loss_reason_;
    bool connected = state_ == State::connected;
    for (const auto& l : listeners_) st.forwards.push_back({l.rule.str(), connected, l.rule.spec.port});
    for (const auto& r : remotes_) st.forwards.push_back({r.rule.str(), connected && r.up, r.up ? r.bound_port : 0});
    return st;
}

bool Tunnel::all_up() const {
    for (const auto& r : remotes_)
        if (!r.up) return false;
    return true;
}

void Tunnel::on_lost(const std::string& why) {
    lost_at_ = Clock::now();
    last_loss_ = std::chrono::system_clock::now();
    last_loss_reason_ = why;
    log_.warn("lost ", server(), ": ", why);
    ev_.emit("lost", {{"server", server()}, {"reason", why}});
    conns_.clear();
    if (session_) {
        ssh_event_remove_session(event_.get(), session_->raw());
        // The link may be dead: a polite disconnect would block on a flush that never completes.
        ssh_silent_disconnect(session_->raw());
    }
    event_.reset();
    session_.reset();
    for (auto& r : remotes_) r.up = false;
    if (s_.once) {  // tn-watch (or whoever runs us) does the reconnecting
        log_.info("--once: exiting at the first loss");
        state_ = State::done;
        return;
    }
    state_ = State::waiting;
    schedule_retry(false);
}

void Tunnel::schedule_retry(bool after_failure) {
    state_ = State::waiting;
    state_since_ = std::chrono::system_clock::now();
    if (!after_failure) backoff_.reset();
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    auto delay = backoff_.next(jitter(rng_));
    next_attempt_ = Clock::now() + delay;
    next_probe_ = Clock::now() + probe_every;
    probe_failed_ = false;
    log_.info("reconnecting in ", delay.count(), " ms");
    ev_.emit("reconnecting", {}, {{"delay_ms", delay.count()}});
}

void Tunnel::accept_on(Listener& l) {
    for (int i = 0; i < 64; ++i) {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        int fd = ::accept4(l.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        Conn& c = conns_.emplace_back();
        c.sock.reset(fd);
        if (l.rule.kind == Kind::dynamic) {
            c.phase = Conn::Phase::socks;
            c.socks = std::make_unique<Socks5>();
        } else {
            c.host = l.rule.spec.host;
            c.port = l.rule.spec.host_port;
            start_channel(c, session_->raw());
        }
    }
}

void Tunnel::accept_remote() {
    ssh_session raw = session_->raw();
    for (int i = 0; i < 64; ++i) {
        int dport = 0;
        ssh_channel ch = ssh_channel_open_forward_port(raw, 0, &dport, nullptr, nullptr);
        if (ch == nullptr) return;
        Conn& c = conns_.emplace_back();
        c.chan.reset(ch);
        const RemoteBind* rb = nullptr;
        for (const auto& r : remotes_)
            if (r.up && r.bound_port == dport) rb = &r;
        if (rb == nullptr) {
            c.dead = true;
            continue;
        }
        c.host = rb->rule.spec.host;
        c.port = rb->rule.spec.host_port;
        c.sock = connect_tcp(c.host, c.port);
        c.phase = Conn::Phase::connecting_local;
        if (!c.sock) {
            log_.warn("cannot connect to ", c.host, ":", c.port, " for ", rb->rule.str());
            c.dead = true;
        }
    }
}

void Tunnel::service(short ssh_revents, Clock::time_point now) {
    ssh_session raw = session_->raw();
    bool ssh_ready = ssh_revents != 0;
    if (ssh_revents & POLLIN) {
        int one = 1;  // before libssh reads: see the end of the turn in run()
        ::setsockopt(ssh_get_fd(raw), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
    if (ssh_ready || (ssh_get_poll_flags(raw) & SSH_WRITE_PENDING)) ssh_event_dopoll(event_.get(), 0);
    packets_handled_ = received_.in_packets;
    if (!ssh_is_connected(raw)) return on_lost("connection closed by " + server());
    if (!remotes_.empty()) accept_remote();
    try_remote_binds(now);
    if (state_ != State::connected) return;
    check_liveness(raw, now);
}

// As OpenSSH's ServerAliveInterval/CountMax: after each keepalive_s of silence a keepalive goes out,
// and the link is lost when keepalive_count of them, all sent after the last packet heard, got no
// answer within keepalive_s each. Anything heard counts as an answer (libssh's packet count moves
// whoever reads the socket: our dopoll, or a channel call during the last turn).
void Tunnel::check_liveness(ssh_session raw, Clock::time_point now) {
    if (received_.in_packets != rx_seen_) {
        rx_seen_ = received_.in_packets;
        last_rx_ = now;
        if (unanswered_ > 0) log_.debug("keepalive answered");
        unanswered_ = 0;
    }
    auto period = std::chrono::seconds(s_.keepalive_s);
    if (now - std::max(last_rx_, last_keepalive_) < period) return;
    if (unanswered_ >= s_.keepalive_count)
        return on_lost("no answer to " + std::to_string(unanswered_) + " keepalives");
    // While the last keepalive is unanswered the slot holds it and no new one is sent: TCP retransmits
    // the old one, and the silence still counts.
    if (slot_free(raw, false)) {
        ssh_send_keepalive(raw);
        slot_taken_ = true;
    }
    last_keepalive_ = now;
    ++unanswered_;
    log_.debug("keepalive sent (", unanswered_, " unanswered)");
    if (s_.probe) {
        if (tcp_probe(s_.probe->host, s_.probe->port, 300)) probe_failures_ = 0;
        else if (++probe_failures_ >= s_.keepalive_count) return on_lost("probe " + s_.probe->str() + " failed");
    }
}

// libssh 0.10 has one slot for global requests and no queue: a request made while another is pending
// is not sent; the call waits for the pending one and returns that one's result. ssh_send_keepalive
// hides its result, so a keepalive marks the slot taken, and this polls it with a cancel-tcpip-forward
// for a name nobody bound: while a request is pending that call only completes it (SSH_AGAIN until
// the answer is in); if none was, the request it sends is one the server refuses, harmlessly, and
// the slot is taken by that until its answer. `wait` blocks until the slot is free.
bool Tunnel::slot_free(ssh_session raw, bool wait) {
    if (wait) ssh_set_blocking(raw, 1);
    while (slot_taken_) {
        slot_taken_ = ssh_channel_cancel_forward(raw, slot_poll_host, 0) == SSH_AGAIN;
        if (!wait) break;
    }
    if (wait) ssh_set_blocking(raw, 0);
    return !slot_taken_;
}

void Tunnel::apply_reload() {
    Settings fresh;
    try {
        fresh = reload_();
    } catch (const std::exception& e) {
        log_.error("reload failed, keeping the running config: ", e.what());
        return;
    }
    std::vector<Rule> added;
    for (const auto& r : fresh.rules) {
        bool have = false;
        for (const auto& o : s_.rules) have = have || o == r;
        if (!have) added.push_back(r);
    }
    for (auto it = listeners_.begin(); it != listeners_.end();) {
        bool keep = false;
        for (const auto& r : fresh.rules) keep = keep || r == it->rule;
        if (!keep) log_.info("forward removed ", it->rule.str());
        it = keep ? std::next(it) : listeners_.erase(it);
    }
    for (auto it = remotes_.begin(); it != remotes_.end();) {
        bool keep = false;
        for (const auto& r : fresh.rules) keep = keep || r == it->rule;
        if (!keep) {
            if (it->up && session_) {
                slot_free(session_->raw(), true);
                ssh_set_blocking(session_->raw(), 1);
                ssh_channel_cancel_forward(session_->raw(), it->rule.listen_host().c_str(), it->bound_port);
                ssh_set_blocking(session_->raw(), 0);
            }
            log_.info("forward removed ", it->rule.str());
        }
        it = keep ? std::next(it) : remotes_.erase(it);
    }
    std::size_t before = listeners_.size();
    try {
        open_listeners(added);
    } catch (const Error& e) {
        log_.error("reload: ", e.what());
    }
    for (const auto& r : added) log_.info("forward added ", r.str());
    // New listeners serve at once when connected, as at connect time: say so. (New -R forwards are
    // announced when the server grants them.)
    if (state_ == State::connected) {
        auto l = listeners_.begin();
        std::advance(l, static_cast<long>(before));
        for (; l != listeners_.end(); ++l) {
            log_.info("forward up ", l->rule.str());
            ev_.emit("forward_up", {{"forward", l->rule.str()}}, {{"port", l->rule.spec.port}});
        }
    }
    s_.rules = fresh.rules;
    announced_up_ = false;
}

int Tunnel::run() {
    SignalFd signals({SIGINT, SIGTERM, SIGHUP});  // before any thread, so every thread blocks them
    open_listeners(s_.rules);
    probe_host_ = s_.client.host;
    probe_port_ = s_.client.port.value_or(22);
    start_connect();

    std::vector<pollfd> fds;
    std::vector<Conn*> conn_of;
    for (;;) {
        if (state_ == State::done) return to_int(ExitCode::temp_fail);
        auto now = Clock::now();
        if (state_ == State::waiting && now >= next_attempt_) {
            start_connect();
        } else if (state_ != State::connected && now >= next_probe_) {
            // Probe while backing off, and while an attempt is in flight: as soon as the server answers
            // again after it did not, go now, instead of sleeping out the backoff or waiting for a SYN
            // sent into the outage to be retransmitted. A server that answers TCP but fails SSH keeps
            // the backoff, because then no probe ever failed.
            bool up = tcp_probe(probe_host_, probe_port_, 200);
            if (!up) probe_failed_ = true;
            if (up && probe_failed_) {
                if (state_ == State::connecting) log_.debug("server answers again: restarting the stalled attempt");
                start_connect();  // an abandoned attempt finishes on its own thread, unheard
            }
            next_probe_ = Clock::now() + probe_every;
        }

        fds.clear();
        conn_of.clear();
        fds.push_back({signals.fd(), POLLIN, 0});
        bool connected = state_ == State::connected;
        std::size_t ssh_index = 0, first_listener = 0, first_conn = 0;
        if (connected) {
            ssh_index = fds.size();
            short ev = POLLIN;
            if (ssh_get_poll_flags(session_->raw()) & SSH_WRITE_PENDING) ev |= POLLOUT;
            fds.push_back({ssh_get_fd(session_->raw()), ev, 0});
        }
        first_listener = fds.size();
        for (auto& l : listeners_) fds.push_back({l.fd.get(), static_cast<short>(connected ? POLLIN : 0), 0});
        first_conn = fds.size();
        if (connected) {
            for (auto& c : conns_) {
                fds.push_back({c.sock.get(), wanted_events(c), 0});
                conn_of.push_back(&c);
            }
        }
        std::size_t first_control = fds.size();
        if (control_) control_->add_pollfds(fds);

        int timeout_ms = 1000;
        auto until = [&](Clock::time_point t) {
            auto d = std::chrono::duration_cast<milliseconds>(t - Clock::now()).count();
            timeout_ms = static_cast<int>(std::clamp<long long>(d, 0, timeout_ms));
        };
        if (state_ == State::connecting) timeout_ms = 20;
        if (control_) until(control_->next_deadline());
        if (state_ == State::waiting) until(next_attempt_);
        if (state_ != State::connected) until(next_probe_);
        if (connected) {
            // The next keepalive is due a period after whichever came last, what we heard or what we sent;
            // waking for last_keepalive_ alone spins the loop while the server keeps talking.
            until(std::max(last_rx_, last_keepalive_) + std::chrono::seconds(s_.keepalive_s));
            for (const auto& r : remotes_)
                if (!r.up) until(r.next_try);
            if (again_) timeout_ms = 0;
            for (const auto& c : conns_)
                if (c.phase == Conn::Phase::opening_channel || !c.to_chan.empty()) timeout_ms = std::min(timeout_ms, 5);
        }

        int n = ::poll(fds.data(), fds.size(), timeout_ms);
        if (n < 0 && errno != EINTR) throw Error(ExitCode::io, std::string("poll: ") + std::strerror(errno));
        now = Clock::now();

        if (fds[0].revents & POLLIN) {
            while (auto sig = signals.take()) {
                if (*sig == SIGHUP) {
                    log_.info("SIGHUP: reloading");
                    apply_reload();
                    continue;
                }
                log_.info("stopping on signal ", *sig);
                conns_.clear();
                event_.reset();
                session_.reset();  // polite disconnect: the link is presumably fine
                ev_.emit("stopped");
                return 0;
            }
        }

        if (control_) control_->handle(fds, first_control, now, [this](bool json) {
            auto st = status();
            return json ? render_json(st) : render_text(st);
        });

        if (state_ == State::connecting && connecting_.wait_for(milliseconds(0)) == std::future_status::ready) {
            if (int rc = finish_connect(); rc >= 0) return rc;
            continue;
        }
        if (!connected || state_ != State::connected) continue;

        service(fds[ssh_index].revents, now);
        if (state_ != State::connected) continue;
        std::size_t i = first_listener;
        for (auto& l : listeners_) {
            if (i < first_conn && (fds[i].revents & POLLIN)) accept_on(l);
            ++i;
        }
        bool ssh_ready = fds[ssh_index].revents != 0 || again_;
        again_ = false;
        ssh_session raw = session_->raw();
        int ssh_fd = ssh_get_fd(raw);
        auto set = [ssh_fd](int option, int on) { ::setsockopt(ssh_fd, IPPROTO_TCP, option, &on, sizeof on); };
        // libssh sends each SSH packet (at most 32 KiB) with its own send(2): corked, a turn's worth
        // leaves in full-sized segments with one push instead of one per packet.
        bool corked = false;
        for (std::size_t k = 0; k < conn_of.size() && !corked; ++k) corked = fds[first_conn + k].revents & POLLIN;
        if (corked) set(TCP_CORK, 1);
        for (std::size_t k = 0; k < conn_of.size(); ++k)
            again_ |= pump(*conn_of[k], fds[first_conn + k].revents, ssh_ready, raw, log_);
        // New connections (accepted above) get their first turn now: opening channels need no fd event.
        for (auto& c : conns_)
            if (c.phase == Conn::Phase::opening_channel) again_ |= pump(c, 0, ssh_ready, raw, log_);
        if (corked) set(TCP_CORK, 0);
        conns_.remove_if([](const Conn& c) { return c.dead; });
        if (received_.in_packets != packets_handled_) again_ = true;
        // Small channel messages (opens, 1-byte replies) must not wait for a delayed ACK before the
        // server's Nagle releases the next one, and Linux leaves quick-ACK mode on its own: re-arm it
        // after every turn that read the SSH socket.
        if (fds[ssh_index].revents) set(TCP_QUICKACK, 1);
    }
}

}  // namespace

int run_tunnel(const Settings& settings, const log::Logger& log, const EventSink& events,
               const std::function<Settings()>& reload, ControlServer* control) {
    Tunnel t(settings, log, events, reload, control);
    return t.run();
}

}  // namespace tn::forward
