// The tunnel's SSH and socket work: connecting (in a helper thread), non-blocking TCP probes,
// keepalives and remote binds through libssh's global-request slot, accepting and status.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "base/error.hpp"
#include "sockets.hpp"
#include "tunnel_shell.hpp"

namespace tn::forward {

namespace {

using std::chrono::milliseconds;

constexpr milliseconds server_probe_wait{200};
constexpr milliseconds network_probe_wait{300};

}  // namespace

void Tunnel::start_connect() {
    auto cfg = s_.client;
    pending_ = std::make_shared<std::promise<Connected>>();
    connecting_ = pending_->get_future();
    // A detached thread: if a signal ends us mid-handshake, exiting must not wait for the handshake.
    // An attempt the core abandons (the server answers again) finishes there, unheard.
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
    log_.debug("connecting to ", s_.client.host);
}

Actions Tunnel::finish_connect(Clock::time_point now) {
    Connected c = connecting_.get();
    pending_.reset();
    if (c.error) {
        try {
            std::rethrow_exception(c.error);
        } catch (const Error& e) {
            if (e.code() == ExitCode::no_perm || e.code() == ExitCode::config) throw;  // never loop on these
            log_.warn(e.what());
        }
        return core_.on_connect_failed(now);
    }
    session_.emplace(std::move(*c.session));
    // Probe what we are connected to (after ~/.ssh/config's HostName and Port), keeping the address
    // already resolved when that did not change.
    const auto& ss = session_->session();
    if (ss.host() != server_target_.host() || ss.port() != server_target_.port())
        server_target_ = ProbeTarget(ss.host(), static_cast<std::uint16_t>(ss.port()), now);
    rx_seen_ = session_->packets_in();
    slot_.reset();
    cancels_.clear();
    again_ = true;  // the server may have opened channels while the binds blocked
    return core_.on_connected(now);
}

void Tunnel::teardown() {
    conns_.clear();
    if (session_) session_->drop();  // the link may be dead: a polite goodbye would block
    session_.reset();
    network_probe_.reset();
    slot_.reset();
    cancels_.clear();
}

void Tunnel::start_probe(std::optional<Probe>& p, ProbeTarget& target, Clock::time_point now) {
    bool server = &p == &server_probe_;
    p = Probe{{}, now + (server ? server_probe_wait : network_probe_wait), true};
    connect_probe(*p, target, now);
}

// Starts the probe's connect once its target's address is known; never waits for a lookup.
void Tunnel::connect_probe(Probe& p, ProbeTarget& target, Clock::time_point now) {
    auto a = target.address(now);
    if (!a) return;  // still resolving: finish_probes tries again each turn until the deadline
    p.resolving = false;
    p.fd = connect_to(*a);
    if (!p.fd) p.deadline = now;  // refused or unreachable at once: the next turn says so
}

std::optional<int> Tunnel::finish_probes(const std::vector<pollfd>& fds, std::size_t first_probe, Clock::time_point now) {
    std::size_t i = first_probe;
    for (auto* p : {&server_probe_, &network_probe_}) {
        const pollfd& pf = fds[i++];
        if (*p && (*p)->resolving && now < (*p)->deadline) {
            connect_probe(**p, p == &server_probe_ ? server_target_ : network_target_, now);
            continue;
        }
        if (!*p || ((*p)->fd && pf.fd != (*p)->fd.get())) continue;  // started after this poll
        bool ready = (*p)->fd && pf.revents != 0;
        if (!ready && now < (*p)->deadline) continue;
        bool answered = false;
        if (ready) {
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt((*p)->fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
            answered = err == 0;
        }
        p->reset();
        auto a = p == &server_probe_ ? core_.on_server_probe(now, answered) : core_.on_network_probe(now, answered);
        if (auto rc = apply(std::move(a), now)) return rc;
    }
    return std::nullopt;
}

// The session has one slot for global requests and no queue (ssh::ForwardSession): one request at a
// time holds it (slot_), completed by calling again once a turn until it is no longer `again`.
Actions Tunnel::progress_slot(Clock::time_point now) {
    if (!slot_ || !session_) return {};
    int bound = 0;
    auto rc = ssh::Step::failed;
    switch (slot_->kind) {
    case SlotUse::Kind::keepalive: rc = session_->poll_keepalive(); break;
    case SlotUse::Kind::cancel: rc = session_->cancel(slot_->rule.listen_host(), slot_->port); break;
    case SlotUse::Kind::bind: rc = session_->listen(slot_->rule.listen_host(), slot_->rule.spec.port, bound); break;
    }
    if (rc == ssh::Step::again) return {};
    SlotUse done = std::move(*slot_);
    slot_.reset();
    return done.kind == SlotUse::Kind::bind ? bind_outcome(now, done.rule, rc, bound) : Actions{};
}

Actions Tunnel::bind_outcome(Clock::time_point now, const Rule& rule, ssh::Step rc, int bound) {
    const auto& remotes = core_.remotes();
    auto it = std::find_if(remotes.begin(), remotes.end(), [&](const RemoteState& r) { return r.rule == rule; });
    if (it == remotes.end()) {  // a reload removed it meanwhile: give back what the server granted
        if (rc == ssh::Step::done) cancels_.push_back({rule, rule.spec.port != 0 ? rule.spec.port : bound});
        return {};
    }
    auto index = static_cast<std::size_t>(it - remotes.begin());
    if (rc == ssh::Step::done) return core_.on_bind(now, index, BindOutcome::granted, bound);
    bool alive = session_ && session_->connected();
    return core_.on_bind(now, index, alive ? BindOutcome::refused : BindOutcome::closed, 0);
}

void Tunnel::send_keepalive() {
    if (!session_) return;
    // While the last keepalive is unanswered it holds the slot and no new one is sent: TCP retransmits
    // the old one, and the core counts the silence all the same.
    if (!slot_) {
        session_->send_keepalive();
        slot_ = SlotUse{SlotUse::Kind::keepalive, {}, 0};
    }
    log_.debug("keepalive sent (", core_.unanswered(), " unanswered)");
}

Actions Tunnel::request_bind(std::size_t index, Clock::time_point now) {
    if (!session_ || index >= core_.remotes().size()) return {};
    if (slot_) return core_.on_bind(now, index, BindOutcome::busy, 0);
    Rule rule = core_.remotes()[index].rule;
    log_.debug("requesting ", rule.str());
    int bound = 0;
    auto rc = session_->listen(rule.listen_host(), rule.spec.port, bound);  // port 0: one round trip
    if (rc == ssh::Step::again) {
        slot_ = SlotUse{SlotUse::Kind::bind, rule, 0};
        return {};
    }
    return bind_outcome(now, rule, rc, bound);
}

void Tunnel::start_cancels() {
    while (session_ && !slot_ && !cancels_.empty()) {
        Cancel c = std::move(cancels_.front());
        cancels_.pop_front();
        if (session_->cancel(c.rule.listen_host(), c.port) == ssh::Step::again)
            slot_ = SlotUse{SlotUse::Kind::cancel, c.rule, c.port};
    }
}

Actions Tunnel::service(short ssh_revents, Clock::time_point now) {
    if (ssh_revents & POLLIN) {
        int one = 1;  // before libssh reads: see the end of the turn in pump_all()
        ::setsockopt(session_->fd(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
    if (ssh_revents != 0 || session_->write_pending()) session_->service();
    packets_handled_ = session_->packets_in();
    if (!session_->connected()) return core_.on_closed(now, "connection closed by " + server());
    // Anything heard answers the keepalives: libssh's packet count moves whoever read the socket (our
    // dopoll, or a channel call during the last turn).
    if (session_->packets_in() != rx_seen_) {
        rx_seen_ = session_->packets_in();
        if (core_.unanswered() > 0) log_.debug("keepalive answered");
        core_.on_heard(now);
    }
    if (!core_.remotes().empty()) accept_remote();
    Actions done = progress_slot(now);
    start_cancels();
    return done;
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
            start_channel(c, *session_);
        }
    }
}

void Tunnel::accept_remote() {
    for (int i = 0; i < 64; ++i) {
        int dport = 0;
        auto ch = session_->accept(dport);
        if (!ch) return;
        Conn& c = conns_.emplace_back();
        c.chan = std::move(*ch);
        const RemoteState* rb = nullptr;
        for (const auto& r : core_.remotes())
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

void Tunnel::open_listeners(const std::vector<Rule>& rules, bool at_start) {
    for (const auto& r : rules) {
        try {
            listeners_.push_back(Listener{r, listen_tcp(r.listen_host(), r.spec.port)});
        } catch (const Error& e) {
            if (at_start) throw;  // every forward must come up (exit 74)
            log_.error("reload: ", e.what());  // the others keep running
            continue;
        }
        log_.debug("listening for ", r.str());
        // New listeners serve at once when connected, as at connect time: say so.
        if (session_) note({Note::Type::forward_up, r.str(), r.spec.port});
    }
}

Actions Tunnel::apply_reload(Clock::time_point now) {
    Settings fresh;
    try {
        fresh = reload_();
    } catch (const std::exception& e) {
        log_.error("reload failed, keeping the running config: ", e.what());
        return {};
    }
    auto has = [](const std::vector<Rule>& v, const Rule& r) { return std::find(v.begin(), v.end(), r) != v.end(); };
    for (const auto& r : s_.rules)
        if (!has(fresh.rules, r)) log_.info("forward removed ", r.str());
    for (const auto& r : fresh.rules)
        if (!has(s_.rules, r)) log_.info("forward added ", r.str());
    s_.rules = fresh.rules;
    return core_.reload(now, fresh.rules);
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
    auto state = core_.state();
    st.state = state == LinkCore::State::connected ? "connected" : state == LinkCore::State::connecting ? "connecting" : "waiting";
    st.since = state_since_;
    st.reconnects = core_.connects() > 0 ? core_.connects() - 1 : 0;
    st.last_loss = last_loss_;
    st.last_loss_reason = last_loss_reason_;
    bool connected = state == LinkCore::State::connected;
    for (const auto& l : listeners_) st.forwards.push_back({l.rule.str(), connected, l.rule.spec.port});
    for (const auto& r : core_.remotes()) st.forwards.push_back({r.rule.str(), connected && r.up, r.up ? r.bound_port : 0});
    return st;
}

}  // namespace tn::forward
