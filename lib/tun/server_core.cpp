// The server state machine: handshakes answered statelessly until they authenticate, sessions
// confirmed by the first transport packet, inner packets routed by destination address.
#include "tun/server_core.hpp"

#include <arpa/inet.h>
#include <sodium.h>

#include <algorithm>
#include <set>

#include "base/error.hpp"
#include "tun/route_plan.hpp"

namespace tn::tun {

std::string Endpoint::str() const {
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa.ss_family == AF_INET) {
        auto* a = reinterpret_cast<const sockaddr_in*>(&sa);
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        return std::string(host) + ":" + std::to_string(port);
    }
    if (sa.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<const sockaddr_in6*>(&sa);
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        return "[" + std::string(host) + "]:" + std::to_string(port);
    }
    return "?";
}

ServerCore::ServerCore(ServerSettings s) : settings_(std::move(s)), pool_(settings_.subnet) {
    crypto_init();
    if (settings_.subnet6) check_subnet6(*settings_.subnet6, settings_.subnet);
    global_.tokens = settings_.handshake_burst;
    ceiling_.tokens = settings_.max_handshake_burst;
    check_site_routes(settings_);
    for (auto& pc : settings_.peers) add_peer(pc);
    index_site_routes();
}

std::optional<Ip6> ServerCore::server_address6() const {
    if (!settings_.subnet6) return std::nullopt;
    return address6_for(*settings_.subnet6, settings_.subnet, server_address());
}

void ServerCore::set_address(Peer& p, std::uint32_t a) {
    p.address = a;
    by_address_[a] = &p;
    if (!settings_.subnet6) return;
    p.address6 = address6_for(*settings_.subnet6, settings_.subnet, a);
    by_address6_[p.address6] = &p;
}

Peer* ServerCore::route6(const Ip6& dst) const {
    auto it = by_address6_.find(dst);
    if (it != by_address6_.end()) return it->second;
    for (auto& [r, p] : site_routes6_)
        if (covers(r, dst)) return p;
    return nullptr;
}

Peer* ServerCore::route(std::uint32_t dst) const {
    auto it = by_address_.find(dst);
    if (it != by_address_.end()) return it->second;
    for (auto& [r, p] : site_routes_)
        if (covers(r, dst)) return p;
    return nullptr;
}

bool ServerCore::speaks_for(const Peer& p, std::uint32_t src) const {
    if (src == p.address) return true;
    for (auto& r : p.config.routes)
        if (covers(r, src)) return true;
    return false;
}

PushConfig ServerCore::push_for(const Peer& p) const {
    PushConfig pc;
    pc.address = p.address;
    pc.prefix = settings_.subnet.prefix;
    pc.mtu = p.config.mtu.value_or(settings_.mtu);
    pc.dns = p.config.dns.value_or(settings_.dns);
    pc.routes = p.config.push_routes.value_or(settings_.routes);
    for (auto& [r, owner] : site_routes_)
        if (owner != &p && std::find(pc.routes.begin(), pc.routes.end(), r) == pc.routes.end()) pc.routes.push_back(r);
    if (settings_.subnet6) {
        pc.prefix6 = settings_.subnet6->prefix;
        pc.address6 = p.address6;
        pc.dns6 = p.config.dns ? p.config.dns6 : settings_.dns6;
        pc.routes6 = p.config.push_routes ? p.config.push_routes6 : settings_.routes6;
        for (auto& [r, owner] : site_routes6_)
            if (owner != &p && std::find(pc.routes6.begin(), pc.routes6.end(), r) == pc.routes6.end()) pc.routes6.push_back(r);
    }
    return pc;
}

void ServerCore::add_peer(const PeerConfig& pc) {
    auto p = std::make_unique<Peer>();
    p->config = pc;
    if (by_key_.count(pc.public_key)) throw ParseError("peer '" + pc.name + "': public key listed twice");
    if (pc.public_key == settings_.key.pub) throw ParseError("peer '" + pc.name + "': that is the server's own key");
    if (pc.address) {
        if (!pool_.reserve(pc.public_key, *pc.address))
            throw ParseError("peer '" + pc.name + "': address " + ipv4_str(*pc.address) +
                             " is not a free host address of " + cidr_str(settings_.subnet));
        set_address(*p, *pc.address);
    }
    by_key_[pc.public_key] = p.get();
    peers_.push_back(std::move(p));
}

void ServerCore::forget_sessions(Peer& p) {
    retire(p.current);
    retire(p.previous);
    retire(p.next);
    if (p.address) {
        auto it = by_address_.find(p.address);
        if (it != by_address_.end() && it->second == &p) by_address_.erase(it);
        auto it6 = by_address6_.find(p.address6);
        if (it6 != by_address6_.end() && it6->second == &p) by_address6_.erase(it6);
    }
    pool_.release(p.config.public_key);
    p.address = 0;
    p.address6 = Ip6{};
}

const Rejection* ServerCore::reject(const Endpoint& from, std::chrono::system_clock::time_point wall,
                                    const char* reason) {
    ++stats_.rejected_handshakes;
    Rejection& r = rejections_[rejection_next_ % rejection_ring];
    ++rejection_next_;
    r = Rejection{from, wall, reason};
    return &r;
}

std::vector<std::pair<Key, Timestamp>> ServerCore::timestamps() const {
    std::vector<std::pair<Key, Timestamp>> out;
    for (auto& p : peers_)
        if (p->last_timestamp != Timestamp{}) out.emplace_back(p->config.public_key, p->last_timestamp);
    return out;
}

void ServerCore::restore_timestamps(const std::vector<std::pair<Key, Timestamp>>& ts) {
    for (auto& [key, t] : ts) {
        auto it = by_key_.find(key);
        // Big-endian seconds then nanoseconds: byte order is time order.
        if (it != by_key_.end() && it->second->last_timestamp < t) it->second->last_timestamp = t;
    }
}

std::vector<Rejection> ServerCore::recent_rejections() const {
    std::vector<Rejection> out;
    std::size_t n = std::min(rejection_next_, rejection_ring);
    for (std::size_t i = rejection_next_ - n; i < rejection_next_; ++i) out.push_back(rejections_[i % rejection_ring]);
    return out;
}

void ServerCore::refill(Bucket& b, double rate, double burst, TimePoint now) {
    double dt = std::chrono::duration<double>(now - b.at).count();
    b.at = now;
    if (dt > 0) b.tokens = std::min(burst, b.tokens + dt * rate);
}

bool ServerCore::take(Bucket& b, double rate, double burst, TimePoint now) {
    refill(b, rate, burst, now);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
}

bool ServerCore::under_load(TimePoint now) {
    refill(global_, settings_.handshakes_per_second, settings_.handshake_burst, now);
    if (global_.tokens < settings_.handshake_burst / 2) under_load_until_ = now + settings_.under_load_linger;
    return now < under_load_until_;
}

bool ServerCore::source_allows(const CookieSource& src, TimePoint now) {
    // The address without the port; an IPv6 sender is keyed by its /64, since one host commonly
    // holds a whole /64 and could otherwise claim thousands of buckets (WireGuard does the same).
    std::string key(reinterpret_cast<const char*>(src.b.data()), src.len == 6 ? 4 : 8);
    auto it = by_source_.find(key);
    if (it == by_source_.end()) {
        if (by_source_.size() >= max_sources && now - swept_at_ >= seconds(1)) {
            // Forget only sources whose bucket has refilled: for them a fresh entry is the same.
            // At most once a second, so a full table does not cost a scan per datagram.
            swept_at_ = now;
            std::erase_if(by_source_, [&](const auto& e) {
                double dt = std::chrono::duration<double>(now - e.second.at).count();
                return e.second.tokens + dt * settings_.source_handshakes_per_second >= settings_.source_burst;
            });
        }
        if (by_source_.size() >= max_sources) return false;
        it = by_source_.try_emplace(key, Bucket{settings_.source_burst, now}).first;
    }
    return take(it->second, settings_.source_handshakes_per_second, settings_.source_burst, now);
}

namespace {
CookieSource cookie_source(const Endpoint& e) {
    CookieSource s;
    if (e.sa.ss_family == AF_INET) {
        auto* a = reinterpret_cast<const sockaddr_in*>(&e.sa);
        std::memcpy(s.b.data(), &a->sin_addr, 4);
        std::memcpy(s.b.data() + 4, &a->sin_port, 2);
        s.len = 6;
    } else if (e.sa.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<const sockaddr_in6*>(&e.sa);
        std::memcpy(s.b.data(), &a->sin6_addr, 16);
        std::memcpy(s.b.data() + 16, &a->sin6_port, 2);
        s.len = 18;
    }
    return s;
}
}  // namespace

std::uint32_t ServerCore::new_index() {
    for (;;) {
        std::uint32_t i = randombytes_random();
        if (i != 0 && !by_index_.count(i)) return i;
    }
}

void ServerCore::retire(std::unique_ptr<Keypair>& kp) {
    if (!kp) return;
    by_index_.erase(kp->local_index);
    kp.reset();
}

Actions ServerCore::on_datagram(std::uint8_t* buf, std::size_t len, const Endpoint& from, TimePoint now,
                                std::chrono::system_clock::time_point wall, std::uint8_t* scratch) {
    auto c = classify(Bytes(buf, len));
    if (!c) {
        ++stats_.dropped_malformed;
        return {};
    }
    switch (c->type) {
    case MsgType::initiation: return handle_initiation(buf, len, from, now, wall, scratch);
    case MsgType::data:
    case MsgType::push: {
        Actions a = handle_transport(buf, len, *c, from, now, scratch);
        if (a.established) by_key_[a.established->config.public_key]->last_handshake = wall;
        return a;
    }
    case MsgType::response:
    case MsgType::cookie: break;  // only clients receive these
    }
    ++stats_.dropped_malformed;
    return {};
}

Actions ServerCore::handle_initiation(std::uint8_t* buf, std::size_t len, const Endpoint& from, TimePoint now,
                                      std::chrono::system_clock::time_point wall, std::uint8_t* scratch) {
    Actions a;
    Bytes msg(buf, initiation_len);
    // mac1 first: one hash proves the sender knows our public key, before any DH work.
    if (!initiation_mac1_ok(settings_.key.pub, msg)) return a.rejected = reject(from, wall, "bad_mac1"), a;
    std::optional<CookieSource> verified;  // a sender that proved it receives at its address
    if (under_load(now)) {
        // Under load only senders that prove they receive at their address get DH work, each at
        // its own rate: the others get a cookie (one MAC and one encryption, no state kept).
        CookieSource src = cookie_source(from);
        if (!cookies_.mac2_ok(Bytes(buf, len), src, now)) {
            cookies_.reply(settings_.key.pub, msg, src, now, scratch);
            a.send = Bytes(scratch, cookie_len);
            a.send_to = from;
            return a.rejected = reject(from, wall, "cookie_sent"), a;
        }
        if (!source_allows(src, now)) return a.rejected = reject(from, wall, "rate_limited"), a;
        verified = src;
    } else if (!take(global_, settings_.handshakes_per_second, settings_.handshake_burst, now)) {
        return a.rejected = reject(from, wall, "rate_limited"), a;
    }
    if (!take(ceiling_, settings_.max_handshakes_per_second, settings_.max_handshake_burst, now)) {
        if (verified) {
            // Within its own limit, refused only because the whole server is at its DH ceiling (a
            // thousand peers back at once after a restart): a fresh cookie makes it retry in one
            // second rather than after REKEY_TIMEOUT, so the ceiling is used, not idle between
            // waves of retries (bench/tun/SCALE.md). The reply is smaller than the initiation.
            cookies_.reply(settings_.key.pub, msg, *verified, now, scratch);
            a.send = Bytes(scratch, cookie_len);
            a.send_to = from;
        }
        return a.rejected = reject(from, wall, "rate_limited"), a;
    }
    auto r = consume_initiation(settings_.key, msg);
    if (!r.state) return a.rejected = reject(from, wall, "decrypt_failed"), a;
    auto it = by_key_.find(r.state->remote_static);
    if (it == by_key_.end()) return a.rejected = reject(from, wall, "unknown_key"), a;
    Peer& p = *it->second;
    // Timestamps must grow: a captured initiation replayed later is refused.
    if (std::memcmp(r.state->ts.data(), p.last_timestamp.data(), p.last_timestamp.size()) <= 0)
        return a.rejected = reject(from, wall, "replayed_timestamp"), a;
    if (p.address == 0) {
        auto addr = pool_.allocate(p.config.public_key);
        if (!addr) return a.rejected = reject(from, wall, "pool_exhausted"), a;
        set_address(p, *addr);
    }
    std::uint32_t idx = new_index();
    auto kp = create_response(*r.state, generate_keypair(), idx, scratch, now, p.config.psk,
                              settings_.aes ? Suite::aes256_gcm : Suite::chacha20_poly1305);
    if (!kp) return a.rejected = reject(from, wall, "bad_point"), a;
    p.last_timestamp = r.state->ts;
    retire(p.next);
    p.next = std::make_unique<Keypair>(std::move(*kp));
    by_index_[idx] = Slot{&p, p.next.get()};
    auto expiry = p.next->created + reject_after_time;
    if (!next_expiry_ || expiry < *next_expiry_) next_expiry_ = expiry;
    p.endpoint = from;
    a.send = Bytes(scratch, response_len);
    a.send_to = from;
    a.answered = &p;
    return a;
}

Bytes ServerCore::seal_for(Peer& p, MsgType t, std::uint8_t* buf, std::size_t plain_len, TimePoint now) {
    if (!p.current || !p.endpoint) return {};
    std::size_t n = seal(*p.current, t, buf, plain_len, now);
    if (n == 0) {
        ++stats_.dropped_expired;
        return {};
    }
    return Bytes(buf, n);
}

Actions ServerCore::handle_transport(std::uint8_t* buf, std::size_t len, const Classified& c, const Endpoint& from,
                                     TimePoint now, std::uint8_t* scratch) {
    Actions a;
    auto it = by_index_.find(c.receiver);
    if (it == by_index_.end()) {
        ++stats_.dropped_unknown_index;
        return a;
    }
    Peer& p = *it->second.peer;
    Keypair& kp = *it->second.kp;
    auto r = open(kp, buf, len, c.counter, now);
    if (!r.len) {
        ++(r.error == OpenError::replay ? stats_.dropped_replay
           : r.error == OpenError::expired ? stats_.dropped_expired
                                           : stats_.dropped_auth);
        return a;
    }
    // Roaming: the endpoint follows the last packet that authenticated and was not a replay.
    p.endpoint = from;
    if (&kp == p.next.get()) {
        // The first packet on a new keypair confirms the handshake: rotate, then push the settings.
        retire(p.previous);
        p.previous = std::move(p.current);
        p.current = std::move(p.next);
        ++p.stats.handshakes;
        a.established = &p;
        auto body = encode_push(push_for(p));
        std::memcpy(scratch + transport_header_len, body.data(), body.size());
        a.send = seal_for(p, MsgType::push, scratch, body.size(), now);
        a.send_to = from;
    }
    if (c.type == MsgType::push) return a;  // clients never push; authenticated but ignored
    Bytes plain(buf + transport_header_len, *r.len);
    if (plain.empty()) {
        ++p.stats.keepalives_rx;
        // Answer keepalives so a client can tell a live server from a restarted one.
        if (a.send.empty()) {
            a.send = seal_for(p, MsgType::data, scratch, 0, now);
            a.send_to = from;
        }
        return a;
    }
    auto ip = inner_ipv4(plain);
    if (!ip) return route_inner6(p, plain, buf, a, now);
    if (ip->src != p.address && !speaks_for(p, ip->src)) {  // a peer speaks for its address and its routes
        ++stats_.dropped_spoofed;
        return a;
    }
    ++p.stats.rx_packets;
    p.stats.rx_bytes += plain.size();
    Peer* dst = route(ip->dst);
    if (dst && dst != &p && a.send.empty()) {
        // Client to client: re-encrypt in place for the other peer without a trip through the kernel.
        Peer& q = *dst;
        Bytes out = seal_for(q, MsgType::data, buf, plain.size(), now);
        if (out.empty()) {
            ++stats_.dropped_no_route;
            return a;
        }
        ++q.stats.tx_packets;
        q.stats.tx_bytes += plain.size();
        a.send = out;
        a.send_to = *q.endpoint;
        return a;
    }
    a.to_tun = plain;
    return a;
}

Actions ServerCore::route_inner6(Peer& p, Bytes plain, std::uint8_t* buf, Actions a, TimePoint now) {
    auto ip = settings_.subnet6 ? inner_ipv6(plain) : std::nullopt;
    if (!ip) {
        ++stats_.dropped_malformed;
        return a;
    }
    bool own = p.address && ip->src == p.address6;
    if (!own && std::none_of(p.config.routes6.begin(), p.config.routes6.end(),
                             [&](const Route6& r) { return covers(r, ip->src); })) {  // its address and its routes
        ++stats_.dropped_spoofed;
        return a;
    }
    ++p.stats.rx_packets;
    p.stats.rx_bytes += plain.size();
    Peer* dst = route6(ip->dst);
    if (dst && dst != &p && a.send.empty()) {
        // Client to client, re-encrypted in place as for IPv4.
        Bytes out = seal_for(*dst, MsgType::data, buf, plain.size(), now);
        if (out.empty()) {
            ++stats_.dropped_no_route;
            return a;
        }
        ++dst->stats.tx_packets;
        dst->stats.tx_bytes += plain.size();
        a.send = out;
        a.send_to = *dst->endpoint;
        return a;
    }
    a.to_tun = plain;
    return a;
}

Actions ServerCore::on_tun(std::uint8_t* buf, std::size_t len, TimePoint now) {
    Actions a;
    Bytes pkt(buf + transport_header_len, len);
    Peer* to = nullptr;
    if (auto ip = inner_ipv4(pkt)) {
        to = route(ip->dst);
    } else if (auto ip6 = settings_.subnet6 ? inner_ipv6(pkt) : std::nullopt) {
        to = route6(ip6->dst);
        // Multicast and other addresses outside subnet6 and the site routes (the kernel's
        // neighbour chatter) are not ours to carry and not worth counting.
        if (!to && !covers(*settings_.subnet6, ip6->dst)) return a;
    } else {
        return a;  // neither (or IPv6 without subnet6): not ours to carry
    }
    if (!to) {
        ++stats_.dropped_no_route;
        return a;
    }
    Peer& p = *to;
    a.send = seal_for(p, MsgType::data, buf, len, now);
    if (a.send.empty()) {
        ++stats_.dropped_no_route;
        return a;
    }
    ++p.stats.tx_packets;
    p.stats.tx_bytes += len;
    a.send_to = *p.endpoint;
    return a;
}

void ServerCore::tick(TimePoint now) {
    if (!next_expiry_ || now < *next_expiry_) return;
    // Due: one scan retires what expired and finds the next expiry among what stays.
    next_expiry_.reset();
    for (auto& p : peers_)
        for (auto* kp : {&p->current, &p->previous, &p->next}) {
            if (!*kp) continue;
            if ((*kp)->expired(now)) {
                retire(*kp);
                continue;
            }
            auto at = (*kp)->created + reject_after_time;
            if (!next_expiry_ || at < *next_expiry_) next_expiry_ = at;
        }
}

}  // namespace tn::tun
