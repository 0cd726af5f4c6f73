// The tn-forward event loop: poll(2) over the SSH socket, listeners, forwarded sockets, probes, the
// control socket and a signalfd; libssh in non-blocking mode; connects in a helper thread so signals
// are served within 2 s. What to do when is LinkCore's decision (link_core.hpp).
#include "tunnel.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <random>

#include "base/error.hpp"
#include "base/signals.hpp"
#include "tunnel_shell.hpp"
#include "base/sd_notify.hpp"

namespace tn::forward {

using std::chrono::milliseconds;

namespace {

CoreSettings core_settings(const Settings& s) {
    CoreSettings c;
    c.rules = s.rules;
    c.keepalive = std::chrono::seconds(s.keepalive_s);
    c.keepalive_count = s.keepalive_count;
    if (s.probe) c.probe = s.probe->str();
    c.backoff_max = std::chrono::seconds(s.backoff_max_s);
    c.once = s.once;
    return c;
}

}  // namespace

Tunnel::Tunnel(const Settings& s, const log::Logger& log, const EventSink& ev, const std::function<Settings()>& reload,
               ControlServer* control, SignalFd& signals)
    : s_(s), log_(log), ev_(ev), reload_(reload), control_(control), signals_(signals),
      core_(core_settings(s), std::random_device{}()) {}

// Carries out the core's actions; a bind's answer feeds the core again, so this works through a queue.
std::optional<int> Tunnel::apply(Actions first, Clock::time_point now) {
    std::deque<Actions> todo;
    todo.push_back(std::move(first));
    while (!todo.empty()) {
        Actions a = std::move(todo.front());
        todo.pop_front();
        for (const auto& n : a.notes) note(n);
        if (a.teardown) teardown();
        if (a.exit) {
            log_.info("--once: exiting ", *a.exit, " (the first loss or failed attempt ends the run)");
            return a.exit;
        }
        for (const auto& r : a.close_listeners) listeners_.remove_if([&](const Listener& l) { return l.rule == r; });
        for (auto& c : a.cancels) cancels_.push_back(std::move(c));
        if (!a.open_listeners.empty()) open_listeners(a.open_listeners, false);
        if (a.connect) start_connect();
        if (a.probe_server) start_probe(server_probe_, server_target_, now);
        if (a.probe_network && s_.probe) start_probe(network_probe_, network_target_, now);
        if (a.keepalive) send_keepalive();
        for (auto i : a.binds) todo.push_back(request_bind(i, now));
    }
    if (core_.state() != last_state_) {
        last_state_ = core_.state();
        state_since_ = std::chrono::system_clock::now();
    }
    return std::nullopt;
}

void Tunnel::note(const Note& n) {
    switch (n.type) {
    case Note::Type::connected:
        log_.info("connected to ", server(), n.value ? " after " + std::to_string(n.value) + " ms down" : "");
        ev_.emit("connected", {{"server", server()}}, {{"down_ms", n.value}});
        break;
    case Note::Type::forward_up:
        log_.info("forward up ", n.text, " port=", n.value);
        ev_.emit("forward_up", {{"forward", n.text}}, {{"port", n.value}});
        break;
    case Note::Type::lost:
        last_loss_ = std::chrono::system_clock::now();
        last_loss_reason_ = n.text;
        log_.warn("lost ", server(), ": ", n.text);
        ev_.emit("lost", {{"server", server()}, {"reason", n.text}});
        break;
    case Note::Type::reconnecting:
        log_.info("reconnecting in ", n.value, " ms");
        ev_.emit("reconnecting", {}, {{"delay_ms", n.value}});
        break;
    case Note::Type::bind_refused:
        log_.warn("server refused ", n.text, " (port in use, perhaps by our previous session); retrying",
                  n.value ? " (" + std::to_string(n.value) + " refusals so far)" : "");
        break;
    case Note::Type::all_up:
        log_.info("all ", n.value, " forwards up via ", server());
        sd::notify_ready();  // Type=notify: every forward listens (again after a reconnect: harmless)
        break;
    }
}

int Tunnel::poll_timeout(Clock::time_point now) const {
    int timeout_ms = 1000;
    auto until = [&](Clock::time_point t) {
        if (t == Clock::time_point::max()) return;
        auto d = std::chrono::duration_cast<milliseconds>(t - now).count();
        timeout_ms = static_cast<int>(std::clamp<long long>(d, 0, timeout_ms));
    };
    until(core_.next_deadline());
    for (const auto* p : {&server_probe_, &network_probe_}) {
        if (*p) until((*p)->deadline);
        if (*p && (*p)->resolving) timeout_ms = std::min(timeout_ms, 10);  // a lookup does not wake poll
    }
    if (control_) until(control_->next_deadline());
    if (core_.state() == LinkCore::State::connecting) timeout_ms = std::min(timeout_ms, 20);  // the connect thread
    if (session_) {
        if (again_) timeout_ms = 0;
        for (const auto& c : conns_)
            if (c.phase == Conn::Phase::opening_channel || !c.to_chan.empty()) timeout_ms = std::min(timeout_ms, 5);
    }
    return timeout_ms;
}

int Tunnel::run() {
    std::vector<Rule> local;
    for (const auto& r : s_.rules)
        if (r.kind != Kind::remote) local.push_back(r);
    open_listeners(local, true);
    server_target_ = ProbeTarget(s_.client.host, s_.client.port.value_or(22), Clock::now());
    if (s_.probe) network_target_ = ProbeTarget(s_.probe->host, s_.probe->port, Clock::now());
    if (auto rc = apply(core_.start(Clock::now()), Clock::now())) return *rc;

    std::vector<pollfd> fds;
    std::vector<Conn*> conn_of;
    for (;;) {
        auto now = Clock::now();
        if (auto rc = apply(core_.tick(now), now)) return *rc;

        fds.clear();
        conn_of.clear();
        fds.push_back({signals_.fd(), POLLIN, 0});
        bool connected = session_.has_value();
        std::size_t ssh_index = 0;
        if (connected) {
            ssh_index = fds.size();
            short ev = POLLIN;
            if (session_->write_pending()) ev |= POLLOUT;
            fds.push_back({session_->fd(), ev, 0});
        }
        std::size_t first_listener = fds.size();
        for (auto& l : listeners_) fds.push_back({l.fd.get(), static_cast<short>(connected ? POLLIN : 0), 0});
        std::size_t first_conn = fds.size();
        if (connected) {
            for (auto& c : conns_) {
                fds.push_back({c.sock.get(), wanted_events(c), 0});
                conn_of.push_back(&c);
            }
        }
        std::size_t first_probe = fds.size();
        for (const auto* p : {&server_probe_, &network_probe_})
            fds.push_back({*p ? (*p)->fd.get() : -1, POLLOUT, 0});
        std::size_t first_control = fds.size();
        if (control_) control_->add_pollfds(fds);

        int n = ::poll(fds.data(), fds.size(), poll_timeout(Clock::now()));
        if (n < 0 && errno != EINTR) throw Error(ExitCode::io, std::string("poll: ") + std::strerror(errno));
        now = Clock::now();

        if (fds[0].revents & POLLIN) {
            while (auto sig = signals_.take()) {
                if (*sig == SIGHUP) {
                    log_.info("SIGHUP: reloading");
                    if (auto rc = apply(apply_reload(now), now)) return *rc;
                    continue;
                }
                log_.info("stopping on signal ", *sig);
                conns_.clear();
                session_.reset();  // polite disconnect: the link is presumably fine
                ev_.emit("stopped");
                return 0;
            }
        }
        if (control_) control_->handle(fds, first_control, now, [this](bool json) {
            auto st = status();
            return json ? render_json(st) : render_text(st);
        });
        if (auto rc = finish_probes(fds, first_probe, now)) return *rc;
        if (core_.state() == LinkCore::State::connecting &&
            connecting_.wait_for(milliseconds(0)) == std::future_status::ready) {
            if (auto rc = apply(finish_connect(now), now)) return *rc;
            continue;
        }
        if (!connected || !session_) continue;
        if (auto rc = apply(service(fds[ssh_index].revents, now), now)) return *rc;
        if (!session_) continue;
        pump_all(fds, ssh_index, first_listener, first_conn, conn_of);
    }
}

void Tunnel::pump_all(const std::vector<pollfd>& fds, std::size_t ssh_index, std::size_t first_listener,
                      std::size_t first_conn, const std::vector<Conn*>& conn_of) {
    std::size_t i = first_listener;
    for (auto& l : listeners_) {
        if (i < first_conn && (fds[i].revents & POLLIN)) accept_on(l);
        ++i;
    }
    bool ssh_ready = fds[ssh_index].revents != 0 || again_;
    again_ = false;
    int ssh_fd = session_->fd();
    auto set = [ssh_fd](int option, int on) { ::setsockopt(ssh_fd, IPPROTO_TCP, option, &on, sizeof on); };
    // libssh sends each SSH packet (at most 32 KiB) with its own send(2): corked, a turn's worth
    // leaves in full-sized segments with one push instead of one per packet.
    bool corked = false;
    for (std::size_t k = 0; k < conn_of.size() && !corked; ++k) corked = fds[first_conn + k].revents & POLLIN;
    if (corked) set(TCP_CORK, 1);
    for (std::size_t k = 0; k < conn_of.size(); ++k)
        again_ |= pump(*conn_of[k], fds[first_conn + k].revents, ssh_ready, *session_, log_);
    // New connections (accepted above) get their first turn now: opening channels need no fd event.
    for (auto& c : conns_)
        if (c.phase == Conn::Phase::opening_channel) again_ |= pump(c, 0, ssh_ready, *session_, log_);
    if (corked) set(TCP_CORK, 0);
    conns_.remove_if([](const Conn& c) { return c.dead; });
    if (session_->packets_in() != packets_handled_) again_ = true;
    // Small channel messages (opens, 1-byte replies) must not wait for a delayed ACK before the
    // server's Nagle releases the next one, and Linux leaves quick-ACK mode on its own: re-arm it
    // after every turn that read the SSH socket.
    if (fds[ssh_index].revents) set(TCP_QUICKACK, 1);
}

int run_tunnel(const Settings& settings, const log::Logger& log, const EventSink& events,
               const std::function<Settings()>& reload, ControlServer* control, SignalFd& signals) {
    Tunnel t(settings, log, events, reload, control, signals);
    return t.run();
}

}  // namespace tn::forward
