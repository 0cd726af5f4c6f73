// VnetAgent::ServeJoin: one serve link in the making (vnet_links.cpp), shared with the UDP serves
// (vnet_udp_agent.cpp), whose local end is a connected UDP socket instead of a TCP connection.
#pragma once

#include "vnet_agent.hpp"

namespace tn::vnet {

// One serve link in the making: the local connect and the link's binding run on their own; the pump
// starts when both are done (serve_link_start), and either one failing ends the other.
struct VnetAgent::ServeJoin {
    ServeJoin(std::uint64_t link, std::uint16_t serve_id, bool early_bind, relay::StreamPtr standby, log::Context log, asio::io_context& io)
        : link_id(link), id(serve_id), early(early_bind), via(std::move(standby)), sl(std::move(log)),
          local(std::make_shared<tcp::socket>(io)) {}
    std::uint64_t link_id;
    std::uint16_t id;
    bool early;
    relay::StreamPtr via;  // the standby link the request came down, if so
    log::Context sl;
    std::shared_ptr<tcp::socket> local;
    std::shared_ptr<udp::socket> dgram;  // a UDP serve: the socket connected to the service (not `local`)
    bool connected = false, failed = false, bound = false;
    relay::StreamPtr link;
    std::unique_ptr<relay::LinkSeal> seal;
};

// A parked link holds nothing to read (its CHALLENGE was read): readable means closed or broken.
bool link_alive(relay::Stream& s);

}  // namespace tn::vnet
