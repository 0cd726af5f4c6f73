// The tunnel's SSH and socket work: connecting (in a helper thread), non-blocking TCP probes,
// keepalives and remote binds through libssh's global-request slot, accepting and status.
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "base/error.hpp"
#include "sockets.hpp"
#include "tunnel_shell.hpp"

// Exported by libssh 0.10 but missing from its headers (FACTS.md): sends keepalive@openssh.com.
extern "C" int ssh_send_keepalive(ssh_session session);

namespace tn::forward {

namespace {

using std::chrono::milliseconds;

constexpr milliseconds server_probe_wait{200};
constexpr milliseconds network_probe_wait{300};
// A name no server can have bound (RFC 2606): cancelling it completes a keepalive in the slot.
constexpr const char* slot_poll_host = "keepalive.tn-forward.invalid";

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
    session_ = std::move(c.session);
    probe_host_ = session_->host();
    probe_port_ = static_cast<std::uint16_t>(session_->port());
    ssh_session raw = session_->raw();
    ssh_set_blocking(raw, 0);
    ssh_set_counters(raw, nullptr, &received_);
    event_.reset(ssh_event_new());
    ssh_event_add_session(event_.get(), raw);
    rx_seen_ = received_.in_packets;
    slot_.reset();
    cancels_.clear();
    again_ = true;  // the server may have opened channels while the binds blocked
    return core_.on_connected(now);
}

void Tunnel::teardown() {
    conns_.clear();
    if (session_) {
        ssh_event_remove_session(event_.get(), session_->raw());
        // The link may be dead: a polite disconnect would block on a flush that never completes.
        ssh_silent_disconnect(session_->raw());
    }
    event_.reset();
    session_.reset();
    network_probe_.reset();
    slot_.reset();
    cancels_.clear();
}

void Tunnel::start_probe(std::optional<Probe>& p, const std::string& host, std::uint16_t port, Clock::time_point now) {
    bool server = &p == &server_probe_;
    p = Probe{connect_tcp(host, port), now + (server ? server_probe_wait : network_probe_wait)};
    if (!p->fd) p->deadline = now;  // refused or unreachable at once: the next turn says so
}

std::optional<int> Tunnel::finish_probes(const std::vector<pollfd>& fds, std::size_t first_probe, Clock::time_point now) {
    std::size_t i = first_probe;
    for (auto* p : {&server_probe_, &network_probe_}) {
        const pollfd& pf = fds[i++];
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

// libssh 0.10 has one slot for global requests and no queue: a request made while another is pending
// is not sent; the call only waits for the pending one and returns that one's result. So one request
// at a time holds the slot (slot_), made non-blocking and completed by calling again (SSH_AGAIN until
// its answer is in), once a turn. ssh_send_keepalive hides its result; a keepalive is completed with a
// cancel-tcpip-forward for a name nobody bound: while it is pending that call only completes it; if
// it already was, the call sends a request the server refuses, harmlessly, and completes that.
Actions Tunnel::progress_slot(Clock::time_point now) {
    if (!slot_ || !session_) return {};
    ssh_session raw = session_->raw();
    int bound = 0, rc = SSH_ERROR;
    switch (slot_->kind) {
    case SlotUse::Kind::keepalive: rc = ssh_channel_cancel_forward(raw, slot_poll_host, 0); break;
    case SlotUse::Kind::cancel:
        rc = ssh_channel_cancel_forward(raw, slot_->rule.listen_host().c_str(), slot_->port);
        break;
    case SlotUse::Kind::bind:
        rc = ssh_channel_listen_forward(raw, slot_->rule.listen_host().c_str(), slot_->rule.spec.port, &bound);
        break;
    }
    if (rc == SSH_AGAIN) return {};
    SlotUse done = std::move(*slot_);
    slot_.reset();
    return done.kind == SlotUse::Kind::bind ? bind_outcome(now, done.rule, rc, bound) : Actions{};
}

Actions Tunnel::bind_outcome(Clock::time_point now, const Rule& rule, int rc, int bound) {
    const auto& remotes = core_.remotes();
    auto it = std::find_if(remotes.begin(), remotes.end(), [&](const RemoteState& r) { return r.rule == rule; });
    if (it == remotes.end()) {  // a reload removed it meanwhile: give back what the server granted
        if (rc == SSH_OK) cancels_.push_back({rule, rule.spec.port != 0 ? rule.spec.port : bound});
        return {};
    }
    auto index = static_cast<std::size_t>(it - remotes.begin());
    if (rc == SSH_OK) return core_.on_bind(now, index, BindOutcome::granted, bound);
    bool alive = session_ && ssh_is_connected(session_->raw());
    return core_.on_bind(now, index, alive ? BindOutcome::refused : BindOutcome::closed, 0);
}

void Tunnel::send_keepalive() {
    if (!session_) return;
    // While the last keepalive is unanswered it holds the slot and no new one is sent: TCP retransmits
    // the old one, and the core counts the silence all the same.
    if (!slot_) {
        ssh_send_keepalive(session_->raw());
        slot_ = SlotUse{SlotUse::Kind::keepalive, {}, 0};
    }
    log_.debug("keepalive sent (", core_.unanswered(), " unanswered)");
}

Actions Tunnel::request_bind(std::size_t index, Clock::time_point now) {
    if (!session_ || index >= core_.remotes().size()) return {};
    if (slot_) return core_.on_bind(now, index, BindOutcome::busy, 0);
    ssh_session raw = session_->raw();
    Rule rule = core_.remotes()[index].rule;
    std::string host = rule.listen_host();
    log_.debug("requesting ", rule.str());
    int bound = 0;
    // Port 0: libssh reads the granted port from the last packet it handled, which is the answer only
    // when the call itself waited for it. Blocking for one round trip, at connect and on reloads.
    bool wait = rule.spec.port == 0;
    if (wait) ssh_set_blocking(raw, 1);
    int rc = ssh_channel_listen_forward(raw, host.c_str(), rule.spec.port, &bound);
    if (wait) ssh_set_blocking(raw, 0);
    if (rc == SSH_AGAIN) {
        slot_ = SlotUse{SlotUse::Kind::bind, rule, 0};
        return {};
    }
    return bind_outcome(now, rule, rc, bound);
}

void Tunnel::start_cancels() {
    while (session_ && !slot_ && !cancels_.empty()) {
        Cancel c = std::move(cancels_.front());
        cancels_.pop_front();
        if (ssh_channel_cancel_forward(session_->raw(), c.rule.listen_host().c_str(), c.port) == SSH_AGAIN)
            slot_ = SlotUse{SlotUse::Kind::cancel, c.rule, c.port};
    }
}

Actions Tunnel::service(short ssh_revents, Clock::time_point now) {
    ssh_session raw = session_->raw();
    if (ssh_revents & POLLIN) {
        int one = 1;  // before libssh reads: see the end of the turn in pump_all()
        ::setsockopt(ssh_get_fd(raw), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
    if (ssh_revents != 0 || (ssh_get_poll_flags(raw) & SSH_WRITE_PENDING)) ssh_event_dopoll(event_.get(), 0);
    packets_handled_ = received_.in_packets;
    if (!ssh_is_connected(raw)) return core_.on_closed(now, "connection closed by " + server());
    // Anything heard answers the keepalives: libssh's packet count moves whoever read the socket (our
    // dopoll, or a channel call during the last turn).
    if (received_.in_packets != rx_seen_) {
        rx_seen_ = received_.in_packets;
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
