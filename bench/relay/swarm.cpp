// One simulated vnet's control session (swarm.hpp), in the order tools/tn-vnet/vnet_agent.cpp runs it.
#include "swarm.hpp"

#include <netinet/in.h>

#include "relay/io_tls.hpp"

namespace tn::bench {

using namespace relay;

tcp::socket Swarm::socket_from(std::size_t i) {
    tcp::socket s(io);
    s.open(tcp::v4());
    int one = 1;
    // The port is chosen at connect, per destination: a source address then holds far more than
    // the ~28,000 ephemeral ports a bind to port 0 would allow in all.
    ::setsockopt(s.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (!sources.empty()) s.bind(tcp::endpoint(sources[i % sources.size()], 0));
    return s;
}

void Swarm::count_attempt() {
    ++n.attempts;
    auto slot = static_cast<std::size_t>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count() / 100);
    if (n.slots.size() <= slot) n.slots.resize(slot + 1);
    ++n.slots[slot];
}

SimVnet::SimVnet(Swarm& sw, std::size_t index, std::string group, std::uint16_t remote_port)
    : sw_(sw), index_(index), group_(std::move(group)), name_("a" + std::to_string(index)), remote_port_(remote_port),
      instance_(random_u64() | 1), hb_(sw.io), retry_(sw.io) {}

Binding SimVnet::binding(const StreamPtr& s) const { return session_binding(s->tls() ? s->ssl() : nullptr); }

void SimVnet::connect() {
    sw_.count_attempt();
    auto sock = std::make_shared<tcp::socket>(sw_.socket_from(index_));
    sock->async_connect(sw_.route, [self = shared_from_this(), sock](error_code ec) {
        if (ec) return self->retry();
        sock->set_option(tcp::no_delay(true));
        if (!self->sw_.tls) return self->handshake(std::make_shared<Stream>(std::move(*sock)));
        auto s = std::make_shared<Stream>(std::move(*sock), *self->sw_.tls);
        s->tls_conn().async_handshake(TlsConn::Role::client, [self, s](error_code ec2) {
            if (ec2 || peer_fingerprint(s->ssl()) != self->sw_.fingerprint) {
                s->close();
                return self->retry();
            }
            self->handshake(s);
        });
    });
}

void SimVnet::handshake(StreamPtr s) {
    auto hello = encode_hello();
    async_write_bytes(s, Bytes(hello.begin(), hello.end()), [](error_code) {});
    async_read_hello(s, [self = shared_from_this(), s](error_code ec, std::uint16_t v, std::string) {
        if (ec || v != kVersion) return s->close(), self->retry();
        async_read_frame(s, [self, s](error_code ec2, Frame f, std::string) {
            if (ec2 || f.type != MsgType::challenge) return s->close(), self->retry();
            try {
                self->authenticate(s, from_frame<Challenge>(f).nonce);
            } catch (const WireError&) {
                s->close();
                self->retry();
            }
        });
    });
}

void SimVnet::authenticate(StreamPtr s, const Nonce& nr) {
    auto nv = random_nonce();
    Auth a{group_, name_, instance_, nv, vnet_proof(sw_.token, nr, nv, group_, name_, binding(s))};
    async_write_bytes(s, encode_frame(to_frame(a)), [](error_code) {});
    async_read_frame(s, [self = shared_from_this(), s, nr, nv](error_code ec, Frame f, std::string) {
        if (ec) return s->close(), self->retry();
        self->welcomed(s, nr, nv, std::move(f));
    });
}

void SimVnet::welcomed(StreamPtr s, const Nonce& nr, const Nonce& nv, Frame f) {
    try {
        auto w = from_frame<Welcome>(f);  // an ERROR (a limit, a refused token) throws: retried like tn-vnet
        if (!equal(w.mac, route_proof(sw_.token, nv, nr, binding(s)))) throw WireError("route proof");
        vnet_id_ = w.vnet_id;
        ticket_ = w.ticket;
        heartbeat_ms_ = std::max(relay::kMinHeartbeatMs, w.heartbeat_ms);
    } catch (const WireError&) {
        s->close();
        return retry();
    }
    ctl_ = s;
    connected_ = true;
    ++sw_.n.connected;
    backoff_.reset();
    w_ = std::make_shared<FrameWriter>(s);
    ServeSpec spec;
    spec.name = "svc";
    spec.port = 9;
    spec.remote_port = remote_port_;
    w_->send(to_frame(Serve{1, spec}));
    read_loop(s);
    heartbeat(s);
}

void SimVnet::read_loop(StreamPtr s) {
    async_read_frame(s, [self = shared_from_this(), s](error_code ec, Frame f, std::string) {
        if (s != self->ctl_) return;
        if (ec) return self->lost(s);
        try {
            self->on_frame(f);
        } catch (const WireError&) {
            return self->lost(s);
        }
        self->read_loop(s);
    });
}

void SimVnet::on_frame(const Frame& f) {
    switch (f.type) {
        case MsgType::ping: return w_->send(to_frame(Pong{from_frame<Ping>(f).token}));
        case MsgType::serve_result: {
            auto m = from_frame<ServeResult>(f);
            if (!m.ok) ++sw_.n.refused;
            if (m.ok && !registered_) ++sw_.n.registered;
            registered_ = registered_ || m.ok;
            return;
        }
        case MsgType::link_request: return open_link(from_frame<LinkRequest>(f).link_id);
        case MsgType::heartbeat:  // version 6: the route's interval moved, as tn-vnet follows it
            heartbeat_ms_ = from_frame<Heartbeat>(f).heartbeat_ms;
            ++sw_.n.heartbeat_moves;
            return arm_heartbeat(ctl_);
        case MsgType::error: throw WireError("route error");
        default: return;  // PONG, SERVE_UP/DOWN of the group's other vnets: nothing to follow here
    }
}

void SimVnet::heartbeat(StreamPtr s) {
    if (s != ctl_) return;
    w_->send(to_frame(Ping{0}));
    ++sw_.n.heartbeats;
    arm_heartbeat(s);
}

void SimVnet::arm_heartbeat(StreamPtr s) {
    hb_.expires_after(std::chrono::milliseconds(heartbeat_ms_));  // cancels a wait under way
    hb_.async_wait([self = shared_from_this(), s](error_code ec) {
        if (!ec) self->heartbeat(s);
    });
}

void SimVnet::lost(const StreamPtr& s) {
    if (s != ctl_) return;
    s->close();
    ctl_.reset();
    w_.reset();
    hb_.cancel();
    if (connected_) --sw_.n.connected;
    if (registered_) --sw_.n.registered;
    connected_ = registered_ = false;
    retry();
}

void SimVnet::retry() {
    ++sw_.n.failures;
    // tn-vnet's own rule (VnetAgent::schedule_reconnect): what is measured is what tn-vnet does.
    auto ms = backoff_.next(backoff_.jitter(random_unit()));
    retry_.expires_after(ms);
    retry_.async_wait([self = shared_from_this()](error_code ec) {
        if (!ec) self->connect();
    });
}

// The serving side of one proxied connection: a link connection of its own (hello, CHALLENGE),
// LINK_ACCEPT proven with the session's ticket, then LINK_OK; the link is held idle from then on.
void SimVnet::open_link(std::uint64_t link_id) {
    auto sock = std::make_shared<tcp::socket>(sw_.socket_from(index_ + link_id));
    auto fail = [this](const StreamPtr& s) {
        ++sw_.n.links_failed;
        if (s) s->close();
    };
    sock->async_connect(sw_.route, [self = shared_from_this(), sock, link_id, fail](error_code ec) {
        if (ec) return fail(nullptr);
        auto s = std::make_shared<Stream>(std::move(*sock));
        auto hello = encode_hello();
        async_write_bytes(s, Bytes(hello.begin(), hello.end()), [](error_code) {});
        async_read_hello(s, [self, s, link_id, fail](error_code ec2, std::uint16_t, std::string) {
            if (ec2) return fail(s);
            async_read_frame(s, [self, s, link_id, fail](error_code ec3, Frame f, std::string) {
                if (ec3 || f.type != MsgType::challenge) return fail(s);
                s->challenge = from_frame<Challenge>(f).nonce;
                auto vid = self->vnet_id_;
                async_write_bytes(s, encode_frame(to_frame(LinkAccept{vid, link_id, link_proof(self->ticket_, MsgType::link_accept, s->challenge, vid, link_id)})),
                                  [](error_code) {});
                async_read_frame(s, [self, s, fail](error_code ec4, Frame ok, std::string) {
                    if (ec4 || ok.type != MsgType::link_ok) return fail(s);
                    ++self->sw_.n.links_ok;
                    self->sw_.held.push_back(s);
                });
            });
        });
    });
}

}  // namespace tn::bench
