// UDP remote_ports (doc/PROTOCOL.relay.md §11): a serve of type udp with a remote_port makes the route
// listen on UDP there. The route is then the using end, as for a TCP remote_port client (§7): each
// source address is a flow of a relay::UdpUse (the flow table, its idle timeout and cap, the framing),
// and each flow asks the pairing core for its own link to the serve, sealed as the route seals its
// other using-end legs.
#include <ostream>

#include "route_session.hpp"

namespace tn::route {

using namespace relay;
using relay::udp;

namespace {
asio::ip::address peer_address(const UdpPeer& p) {
    asio::ip::address_v6::bytes_type b;
    std::copy(p.ip.begin(), p.ip.end(), b.begin());
    asio::ip::address_v6 v6(b);
    if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6);
    return v6;
}
}  // namespace

bool RouteServer::open_udp_remote(const ServeRecord& r, std::string& why) {
    error_code ec;
    udp::endpoint ep(asio::ip::make_address(cfg_.proxy_bind, ec), r.spec.remote_port);
    if (ec) {
        why = "proxy_bind '" + cfg_.proxy_bind + "' is not an IP address";
        return false;
    }
    udp::socket sock(io_);
    sock.open(ep.protocol(), ec);
    if (!ec) sock.bind(ep, ec);
    if (ec) {
        why = "cannot listen on udp remote_port " + std::to_string(r.spec.remote_port) + ": " + ec.message();
        return false;
    }
    auto port = r.spec.remote_port;
    relay::UdpUseLimits limits{std::chrono::seconds(cfg_.udp_idle_timeout), cfg_.udp_max_flows};
    auto use = std::make_shared<relay::UdpUse>(std::move(sock), limits, [this, port](std::uint64_t flow) { open_udp_flow(port, flow); },
                                              log_.with("remote_port", "udp/" + std::to_string(port)));
    use->start();
    udp_remotes_[port] = UdpRemote{use, r.group, r.spec.id};
    return true;
}

void RouteServer::close_udp_remote(std::uint16_t port, const std::string& why) {
    auto it = udp_remotes_.find(port);
    if (it == udp_remotes_.end()) return;
    auto use = it->second.use;
    udp_remotes_.erase(it);
    use->stop();  // closes the socket and every flow's link
    log_.info("udp remote_port ", port, " closed (", why, ")");
}

void RouteServer::open_udp_flow(std::uint16_t port, std::uint64_t flow) {
    auto it = udp_remotes_.find(port);
    if (it == udp_remotes_.end() || stopped_) return;
    auto peer = it->second.use->table().peer(flow);
    if (!peer) return;
    auto addr = peer_address(*peer);
    UdpFlowUser u{port, flow, source_key(addr)};
    auto lg = log_.with("peer", "udp " + addr.to_string() + ":" + std::to_string(peer->port));
    // Copies: request_link may end the flow (and its listener's entry) before it returns.
    auto group = it->second.group;
    auto id = it->second.id;
    request_link(nullptr, group, id, UserKind::tcp, lg, {}, 0, {}, Cipher::none, &u);
}

void RouteServer::udp_failed(const UdpFlowUser& u, const std::string& why) {
    if (auto it = udp_remotes_.find(u.port); it != udp_remotes_.end()) {
        auto use = it->second.use;  // failed() may log and drop the flow: keep the use alive meanwhile
        use->failed(u.flow, why);
    }
}

void RouteServer::udp_bound(std::uint64_t link_id, const PendingKey& k, const UdpFlowUser& u, StreamPtr s, Bytes first,
                            std::shared_ptr<LinkSeal> own) {
    auto it = udp_remotes_.find(u.port);
    if (it == udp_remotes_.end() || stopped_) return s->close();
    auto use = it->second.use;
    auto tag = link_tag(k.group, k.serve_vnet, k.id, 0).value_or(LinkTag{k.group, {}, {}, k.id});
    ++links_total_;
    if (s->carried++) ++links_reused_;
    traffic_.opened(tag);
    // The serving vnet reads LINK_OK (after any standby request) and then the flow's records: `first`
    // goes out ahead of every datagram. Its replies come in as records; nothing else to wait for.
    auto holder = std::make_shared<std::weak_ptr<relay::UdpLink>>();
    auto on_end = [this, link_id, tag, holder](std::uint64_t bytes) {
        auto l = holder->lock();
        bytes_total_ += bytes;
        // A flow ends by expiring, by its link's end or with the listener: none is the link's error.
        traffic_.closed(tag, l ? l->sent() : 0, l ? l->received() : 0, false);
        udp_active_.erase(link_id);
    };
    auto link = use->linked(u.flow, std::move(s), std::make_unique<LinkSeal>(std::move(*own)), on_end, std::move(first));
    if (!link) return;
    *holder = link;
    udp_active_[link_id] = UdpActive{link, tag};
    link->resume_read();
}

void RouteServer::udp_status_json(std::ostream& o) const {
    o << "[";
    bool first = true;
    for (const auto& [port, r] : udp_remotes_) {
        const auto& t = r.use->table();
        o << (first ? "" : ",") << "{\"port\":" << port << ",\"serve\":" << r.id << ",\"flows\":" << t.open()
          << ",\"flows_total\":" << t.opened_total() << ",\"max_flows\":" << t.max_flows() << ",\"dropped\":" << t.dropped()
          << ",\"dropped_queue\":" << r.use->dropped_queue() << ",\"expired\":" << t.expired_total() << "}";
        first = false;
    }
    o << "]";
}

void RouteServer::udp_metrics(std::ostream& o) const {
    auto metric = [&](const char* name, const char* type, const char* help, auto value) {
        o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
        for (const auto& [port, r] : udp_remotes_) o << name << "{port=\"" << port << "\"} " << value(r) << "\n";
    };
    metric("tn_route_udp_flows", "gauge", "Flows (source addresses) open on a UDP remote_port.",
           [](const UdpRemote& r) { return r.use->table().open(); });
    metric("tn_route_udp_flows_total", "counter", "Flows opened on a UDP remote_port.",
           [](const UdpRemote& r) { return r.use->table().opened_total(); });
    metric("tn_route_udp_dropped_total", "counter", "Datagrams from new sources dropped at udp_max_flows.",
           [](const UdpRemote& r) { return r.use->table().dropped(); });
    metric("tn_route_udp_expired_total", "counter", "Flows closed after udp_idle_timeout without a datagram.",
           [](const UdpRemote& r) { return r.use->table().expired_total(); });
}

}  // namespace tn::route
