// tn-vnet's link connections (hello exchanged, the route's challenge read) and its pools of pre-opened
// ones (doc/PROTOCOL.relay.md §7), so a new proxied connection costs one round trip through the route.
// Parked links wait for a local connection to a use; standby links wait for the route to send a
// LINK_REQUEST for one of our serves down them. `[vnet] link_pool` of each, 0 to turn them off.
#include "vnet_agent.hpp"

namespace tn::vnet {

using namespace relay;

void VnetAgent::refill_pools() {
    if (!connected_ || stopped_) return;
    bool any_use = false, any_serve = false;
    for (const auto& u : uses_) any_use = any_use || u.listening();
    for (const auto& s : serves_) any_serve = any_serve || s.registered;
    for (auto n = pools_.to_open(PoolKind::parked, any_use); n > 0; --n) open_pooled(false);
    for (auto n = pools_.to_open(PoolKind::standby, any_serve); n > 0; --n) open_pooled(true);
}

void VnetAgent::open_pooled(bool standby) {
    auto kind = standby ? PoolKind::standby : PoolKind::parked;
    pools_.start_open(kind);
    auto gen = pools_.generation();
    // A failed attempt is not retried here: the next use of the pool refills it, so a route that
    // refuses pooled links costs no loop.
    open_link_conn([this, standby, kind, gen](relay::error_code ec, StreamPtr s, std::string why) {
        if (ec || !pools_.current(gen) || !connected_) {
            if (ec) route_log_.debug("pre-opened link failed: ", why);
            pools_.open_failed(kind);
            if (s) s->close();
            return;
        }
        auto type = standby ? MsgType::link_standby : MsgType::link_park;
        auto mac = link_proof(ticket_, type, s->challenge, vnet_id_, 0);
        auto fr = standby ? encode_frame(to_frame(LinkStandby{vnet_id_, mac})) : encode_frame(to_frame(LinkPark{vnet_id_, mac}));
        async_write_bytes(s, std::move(fr), [](relay::error_code) {});
        if (!pools_.opened(kind, gen, s)) return s->close();
        if (standby) standby_wait(s, gen);
    });
}

void VnetAgent::open_link_conn(OnStream done) {
    open_route([this, done](relay::error_code ec, StreamPtr s, std::string why) {
        if (ec) return done(ec, nullptr, why);
        auto hello = encode_hello();
        async_write_bytes(s, Bytes(hello.begin(), hello.end()), [](relay::error_code) {});
        async_read_hello(s, [s, done](relay::error_code ec2, std::uint16_t v, std::string why2) {
            if (ec2) return done(ec2, nullptr, "hello: " + why2);
            if (v != kVersion) return done(asio::error::no_protocol_option, nullptr, "route speaks protocol version " + std::to_string(v));
            async_read_frame(s, [s, done](relay::error_code ec3, Frame f, std::string why3) {
                if (ec3) return done(ec3, nullptr, why3);
                try {
                    s->challenge = from_frame<Challenge>(f).nonce;
                } catch (const WireError& e) {
                    // An ERROR here (a refused hello) or anything else: this link is unusable.
                    return done(asio::error::invalid_argument, nullptr, e.what());
                }
                done({}, s, {});
            });
        });
    });
}

void VnetAgent::standby_wait(StreamPtr s, std::uint64_t gen) {
    async_read_frame(s, [this, s, gen](relay::error_code ec, Frame f, std::string why) {
        if (!pools_.current(gen)) return s->close();
        pools_.remove_standby(s);
        if (ec) {
            if (ec == asio::error::invalid_argument) route_log_.warn("protocol error on a standby link: ", why);
            return s->close();
        }
        try {
            if (f.type == MsgType::error) {
                route_log_.warn("the route refused a standby link: ", from_frame<ErrorMsg>(f).message);
                return s->close();
            }
            auto m = from_frame<LinkRequest>(f);
            serve_link(m.link_id, m.id, m.early, s);
            refill_pools();  // after the local connect started: not on this connection's path
        } catch (const WireError& e) {
            route_log_.warn("protocol error on a standby link: ", e.what());
            s->close();
        }
    });
}

bool VnetAgent::will_keep(bool standby, std::uint64_t gen) const {
    if (!connected_ || stopped_) return false;
    std::size_t busy = 0;  // connections of that kind carried now (see AgentPools::will_keep)
    if (standby)
        for (const auto& s : serves_) busy += s.open_links;
    else
        for (const auto& u : uses_) busy += u.open_links;
    return pools_.will_keep(standby ? PoolKind::standby : PoolKind::parked, gen, busy);
}

void VnetAgent::reuse_link(StreamPtr s, bool standby, std::uint64_t gen) {
    // Our EOF record said we keep it, so the route parks it again by itself once both EOF records
    // passed; it and we step the challenge the same way, and the link is ready now: no message.
    if (!pools_.current(gen) || !connected_ || stopped_) return s->close();
    s->challenge = next_challenge(s->challenge);
    if (!pools_.reuse(standby ? PoolKind::standby : PoolKind::parked, gen, s)) return s->close();
    if (standby) standby_wait(s, gen);
}

void VnetAgent::drop_pools() {
    for (auto& s : pools_.drop()) s->close();
}

}  // namespace tn::vnet
