// The server's config checks and reloads: site routes checked and indexed, a changed peer list
// applied to the running core (ServerCore::reload, server_core.hpp).
#include <algorithm>
#include <map>
#include <set>

#include "base/error.hpp"
#include "tun/route_plan.hpp"
#include "tun/server_core.hpp"

namespace tn::tun {

namespace {
bool overlap(const Route& a, const Route& b) { return covers(a, b.addr) || covers(b, a.addr); }
}  // namespace

void ServerCore::check_site_routes(const ServerSettings& s) {
    std::vector<std::pair<Route, const PeerConfig*>> all;
    for (auto& pc : s.peers)
        for (auto& r : pc.routes) {
            if (overlap(r, s.subnet))
                throw ParseError("peer '" + pc.name + "': route " + cidr_str(r) + " overlaps the tunnel subnet " +
                                 cidr_str(s.subnet));
            for (auto& [o, owner] : all)
                if (overlap(r, o))
                    throw ParseError("peer '" + pc.name + "': route " + cidr_str(r) + " overlaps " + cidr_str(o) +
                                     " of peer '" + owner->name + "'");
            all.emplace_back(r, &pc);
        }
    std::vector<std::pair<Route6, const PeerConfig*>> all6;
    for (auto& pc : s.peers)
        for (auto& r : pc.routes6) {
            if (!s.subnet6) throw ParseError("peer '" + pc.name + "': IPv6 route " + cidr_str(r) + " needs subnet6");
            if (overlap(r, *s.subnet6))
                throw ParseError("peer '" + pc.name + "': route " + cidr_str(r) + " overlaps the tunnel subnet " +
                                 cidr_str(*s.subnet6));
            for (auto& [o, owner] : all6)
                if (overlap(r, o))
                    throw ParseError("peer '" + pc.name + "': route " + cidr_str(r) + " overlaps " + cidr_str(o) +
                                     " of peer '" + owner->name + "'");
            all6.emplace_back(r, &pc);
        }
    for (auto& pc : s.peers) {
        std::size_t n = (pc.push_routes ? *pc.push_routes : s.routes).size() + all.size() - pc.routes.size();
        std::size_t n6 = (pc.push_routes ? pc.push_routes6 : s.routes6).size() + all6.size() - pc.routes6.size();
        if (std::max(n, n6) > max_push_routes)
            throw ParseError("peer '" + pc.name + "': " + std::to_string(std::max(n, n6)) +
                             " routes of one family to push, at most " + std::to_string(max_push_routes));
    }
}

void ServerCore::index_site_routes() {
    site_routes_.clear();
    for (auto& p : peers_)
        for (auto& r : p->config.routes) site_routes_.emplace_back(r, p.get());
    std::stable_sort(site_routes_.begin(), site_routes_.end(),
                     [](const auto& a, const auto& b) { return a.first.prefix > b.first.prefix; });
    site_routes6_.clear();
    for (auto& p : peers_)
        for (auto& r : p->config.routes6) site_routes6_.emplace_back(r, p.get());
    std::stable_sort(site_routes6_.begin(), site_routes6_.end(),
                     [](const auto& a, const auto& b) { return a.first.prefix > b.first.prefix; });
}

ReloadResult ServerCore::reload(const ServerSettings& s) {
    ReloadResult r;
    std::set<Key> old_keys;
    for (auto& p : peers_) old_keys.insert(p->config.public_key);
    std::map<Key, Timestamp> carried_ts;  // of peers that end their sessions but stay
    // Check the whole new list before touching anything.
    ServerSettings checked = s;
    checked.subnet = settings_.subnet;
    checked.subnet6 = settings_.subnet6;
    check_site_routes(checked);
    std::map<Key, const PeerConfig*> wanted;
    std::set<std::uint32_t> statics;
    for (auto& pc : s.peers) {
        if (!wanted.emplace(pc.public_key, &pc).second)
            throw ParseError("peer '" + pc.name + "': public key listed twice");
        if (pc.public_key == settings_.key.pub)
            throw ParseError("peer '" + pc.name + "': that is the server's own key");
        if (pc.address && (!pool_.usable(*pc.address) || !statics.insert(*pc.address).second))
            throw ParseError("peer '" + pc.name + "': address " + ipv4_str(*pc.address) +
                             " is not a free host address of " + cidr_str(settings_.subnet));
    }
    if (s.key.pub != settings_.key.pub) r.need_restart.push_back("private_key_file");
    if (!(s.subnet == settings_.subnet)) r.need_restart.push_back("subnet");
    if (s.subnet6 != settings_.subnet6) r.need_restart.push_back("subnet6");
    if (s.mtu != settings_.mtu) r.need_restart.push_back("mtu");
    // Peers that go, or whose static address or pre-shared key changes, end their sessions first (a
    // key replaced because it leaked must not go on protecting a live session).
    for (auto it = peers_.begin(); it != peers_.end();) {
        Peer& p = **it;
        auto w = wanted.find(p.config.public_key);
        bool rekeyed = w != wanted.end() && w->second->psk != p.config.psk;
        if (w == wanted.end() || w->second->address != p.config.address || rekeyed) {
            (w == wanted.end() ? r.removed : rekeyed ? r.rekeyed : r.readdressed)++;
            if (w != wanted.end()) carried_ts[p.config.public_key] = p.last_timestamp;  // replays stay refused
            forget_sessions(p);
            by_key_.erase(p.config.public_key);
            it = peers_.erase(it);
            continue;
        }
        p.config = *w->second;  // name, site routes and what it is pushed (at its next handshake)
        ++r.kept;
        ++it;
    }
    // A pooled peer sitting on an address a static peer now claims moves: it handshakes again.
    for (auto& p : peers_)
        if (!p->config.address && p->address && statics.count(p->address)) forget_sessions(*p);
    for (auto& pc : s.peers)
        if (!by_key_.count(pc.public_key)) {
            add_peer(pc);
            if (!old_keys.count(pc.public_key)) ++r.added;
            if (auto t = carried_ts.find(pc.public_key); t != carried_ts.end())
                by_key_[pc.public_key]->last_timestamp = t->second;
        }
    settings_.peers = s.peers;
    settings_.aes = s.aes;                                              // from the next handshake on
    settings_.max_handshakes_per_second = s.max_handshakes_per_second;  // the bucket refills at the new rate
    settings_.max_handshake_burst = s.max_handshake_burst;
    settings_.dns = s.dns;
    settings_.routes = s.routes;
    settings_.dns6 = s.dns6;
    settings_.routes6 = s.routes6;
    index_site_routes();
    return r;
}

}  // namespace tn::tun
