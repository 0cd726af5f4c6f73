// tn-vnet's UDP uses and serves on the agent (relay/io_udp_use.hpp has the datagram side): a use's socket and
// the link of each new flow; a serve's connected socket per link.
#include "vnet_serve_join.hpp"

namespace tn::vnet {

using namespace relay;

bool VnetAgent::attach_udp(LocalUse& u, std::uint16_t port) {
    relay::error_code ec;
    auto addr = asio::ip::make_address(u.cfg.ip, ec);
    udp::socket sock(io_);
    if (!ec) {
        udp::endpoint ep(addr, port);
        sock.open(ep.protocol(), ec);
        if (!ec) sock.bind(ep, ec);
    }
    if (ec) {
        u.set(UseState::error, "cannot listen on udp " + u.cfg.ip + ":" + std::to_string(port) + ": " + ec.message());
        use_log(u.cfg.name).error(u.state_text());
        return false;
    }
    UdpUseLimits limits{std::chrono::seconds(u.cfg.udp_idle_timeout), u.cfg.udp_max_flows};
    auto name = u.cfg.name;
    u.udp = std::make_shared<UdpUse>(std::move(sock), limits, [this, name](std::uint64_t flow) { open_udp_flow(name, flow); },
                                     use_log(name));
    u.udp->start();
    u.bound_port = port;
    u.set(UseState::attached);
    return true;
}

void VnetAgent::open_udp_flow(const std::string& use_name, std::uint64_t flow) {
    auto* u = use_by_name(use_name);
    if (!u || !u->udp) return;
    std::weak_ptr<UdpUse> weak = u->udp;
    while (auto taken = pools_.take_parked()) {
        auto s = *taken;
        if (!link_alive(*s)) {
            s->close();
            continue;
        }
        udp_flow_link(s, use_name, flow);
        return refill_pools();
    }
    open_link_conn([this, weak, use_name, flow](relay::error_code ec, StreamPtr s, std::string why) {
        auto uu = weak.lock();
        if (!uu) {
            if (s) s->close();
            return;
        }
        if (ec) return uu->failed(flow, "link to the route failed: " + why);
        udp_flow_link(s, use_name, flow);
    });
}

void VnetAgent::udp_flow_link(StreamPtr s, const std::string& use_name, std::uint64_t flow) {
    if (cfg_.e2e_secret) return udp_flow_link_e2e(std::move(s), use_name, flow);
    auto* u = use_by_name(use_name);
    if (!u || !u->udp) return s->close();
    std::weak_ptr<UdpUse> weak = u->udp;
    auto [first, seal] = link_open_frame(s, u->cfg.id);
    ++links_total_;
    ++u->open_links;
    // As a TCP use does, the flow's first datagrams follow LINK_OPEN at once (the route holds them
    // until the pair is bound); the route's LINK_OPENED comes in front of the serve's first reply.
    auto link = u->udp->linked(flow, s, std::move(seal), [this, use_name](std::uint64_t bytes) {
        bytes_total_ += bytes;
        if (auto* lu = use_by_name(use_name); lu && lu->open_links) --lu->open_links;
    }, std::move(first));
    if (!link) return;
    async_read_frame(s, [s, weak, flow, link](relay::error_code ec, Frame f, std::string why) {
        auto uu = weak.lock();
        if (!uu || link->ended() || !s->socket().is_open()) return;  // the flow ended meanwhile
        std::string err = why;
        if (!ec) {
            try {
                if (f.type != MsgType::error) {
                    from_frame<LinkOpened>(f);
                    return link->resume_read();
                }
                err = from_frame<ErrorMsg>(f).message;
            } catch (const WireError& e) {
                err = std::string("protocol error: ") + e.what();
            }
        }
        uu->failed(flow, "link refused: " + err);
    });
}

void VnetAgent::connect_serve_udp(std::shared_ptr<ServeJoin> j, const std::string& ip, std::uint16_t port) {
    // A connected UDP socket: the service's replies come to it alone (datagrams from elsewhere are not
    // taken), and a connect is immediate, so the join goes on at once.
    auto done = [this, j](relay::error_code ec, const udp::endpoint& ep) {
        if (!ec) j->dgram->open(ep.protocol(), ec);
        if (!ec) j->dgram->connect(ep, ec);
        serve_link_connected(j, ec);
    };
    relay::error_code aec;
    auto addr = asio::ip::make_address(ip, aec);
    if (!aec) return done({}, udp::endpoint(addr, port));
    auto res = std::make_shared<udp::resolver>(io_);
    res->async_resolve(ip, std::to_string(port), [res, done](relay::error_code ec, udp::resolver::results_type r) {
        if (!ec && r.empty()) ec = asio::error::host_not_found;
        done(ec, ec ? udp::endpoint() : r.begin()->endpoint());
    });
}

void VnetAgent::start_udp_serve(std::shared_ptr<ServeJoin> j) {
    ++links_total_;
    if (auto* sv = serve_by_id(j->id)) {
        ++sv->open_links;
        unserve_timers_.opened(j->id);
    }
    serve_udp_link(j->link, std::move(j->seal), j->dgram, [this, id = j->id, sl = j->sl](std::uint64_t bytes, const std::string& why) {
        bytes_total_ += bytes;
        if (auto* sv = serve_by_id(id); sv && sv->open_links) --sv->open_links;
        unserve_timers_.closed(id, static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       Clock::now().time_since_epoch()).count()));
        if (why.rfind("protocol error", 0) == 0) sl.warn("udp link closed: ", why);
    });
}

}  // namespace tn::vnet
