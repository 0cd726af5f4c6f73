// UDP serves and uses over links (doc/PROTOCOL.relay.md §11). A UDP use listens on a local UDP port;
// each source address is a flow (relay/udp_flows) with its own link to the serve; the serving vnet
// sends each link's datagrams from its own connected UDP socket to the service. On a link every
// datagram is a framed one (relay/udp_frames) in one sealed record, so datagrams stay datagrams.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "base/log.hpp"
#include "relay/io_stream.hpp"
#include "relay/seal.hpp"
#include "relay/udp_flows.hpp"
#include "relay/udp_frames.hpp"

namespace tn::relay {

using udp = asio::ip::udp;

// One link carrying datagrams. send() frames a datagram and seals it into one record, written in
// order behind the others; beyond kQueueMax bytes waiting it drops the datagram (as a full socket
// buffer would: UDP may lose, the link must not grow). Records read from the link are opened and
// each datagram in them goes to `deliver`. `ended` is called once when the link ends by itself (its
// close, its EOF record, a bad record or frame); close() ends it from our side without calling it.
class UdpLink : public std::enable_shared_from_this<UdpLink> {
public:
    using Deliver = std::function<void(std::span<const std::uint8_t>)>;
    using Ended = std::function<void(const std::string& why)>;
    static constexpr std::size_t kQueueMax = 256 * 1024;

    // `prefix` (the using side's LINK_OPEN) goes out before any datagram. With `hold_read` the link
    // is not read until resume_read(): the caller reads a frame from it first (LINK_OPENED).
    static std::shared_ptr<UdpLink> start(relay::StreamPtr link, std::unique_ptr<relay::LinkSeal> seal, Deliver deliver, Ended ended,
                                          relay::Bytes prefix = {}, bool hold_read = false);
    void resume_read();
    bool send(std::span<const std::uint8_t> datagram);
    // Sends the EOF record after what is queued, then closes the link.
    void close();
    bool ended() const { return done_; }
    std::uint64_t bytes() const { return sent_ + received_; }  // datagram bytes both ways
    std::uint64_t sent() const { return sent_; }                // into the link
    std::uint64_t received() const { return received_; }        // out of it

private:
    UdpLink(relay::StreamPtr link, std::unique_ptr<relay::LinkSeal> seal, Deliver deliver, Ended ended);
    void read();
    void process();
    void flush();
    void end(const std::string& why);

    relay::StreamPtr link_;
    std::unique_ptr<relay::LinkSeal> seal_;
    Deliver deliver_;
    Ended ended_;
    relay::UdpFrameDecoder frames_;
    std::unique_ptr<std::uint8_t[]> in_;
    std::size_t have_ = 0;
    relay::Bytes out_, next_, plain_;
    bool writing_ = false, closing_ = false, done_ = false;
    std::uint64_t sent_ = 0, received_ = 0;
};

struct UdpUseLimits {
    std::chrono::seconds idle{60};
    std::size_t max_flows = 256;
};

// A UDP use's socket and flows. `open_flow` asks the agent for a link to the serve for a new flow;
// the agent answers with linked() or failed(). Datagrams of a flow whose link is still opening wait
// (up to kEarlyMax bytes; beyond, dropped).
class UdpUse : public std::enable_shared_from_this<UdpUse> {
public:
    using OpenFlow = std::function<void(std::uint64_t flow)>;
    static constexpr std::size_t kEarlyMax = 64 * 1024;

    UdpUse(udp::socket sock, UdpUseLimits limits, OpenFlow open_flow, log::Context log);
    void start();
    // Closes the socket and every flow's link.
    void stop();
    // `on_end` is called with the flow's datagram bytes when it ends, however it ends.
    using OnEnd = std::function<void(std::uint64_t bytes)>;
    // The flow's link: `open_frame` goes out first, then the flow's datagrams; its reading waits for
    // the caller's resume_read() (after LINK_OPENED). Null when the flow is gone (the link is closed).
    std::shared_ptr<UdpLink> linked(std::uint64_t flow, relay::StreamPtr link, std::unique_ptr<relay::LinkSeal> seal, OnEnd on_end,
                                    relay::Bytes open_frame);
    void failed(std::uint64_t flow, const std::string& why);

    const relay::UdpFlowTable& table() const { return table_; }
    // Datagrams of open flows dropped (queue full, link opening) and any over 65,507 bytes.
    std::uint64_t dropped_queue() const { return dropped_queue_; }
    std::uint64_t bytes() const { return bytes_; }

private:
    struct Flow {
        udp::endpoint src;
        std::shared_ptr<UdpLink> link;
        std::deque<relay::Bytes> early;
        std::size_t early_bytes = 0;
        OnEnd on_end;
    };
    void receive();
    void on_datagram(std::size_t n);
    void forward(Flow& f, std::span<const std::uint8_t> d);
    void arm_timer();
    void expire();
    void closed(std::uint64_t flow);
    // Forgets the flow: closes its link (EOF record) unless it ended already, tells its on_end.
    void drop(std::map<std::uint64_t, Flow>::iterator it);

    udp::socket sock_;
    relay::UdpFlowTable table_;
    OpenFlow open_flow_;
    log::Context log_;
    asio::steady_timer timer_;
    bool timer_armed_ = false, stopped_ = false;
    std::map<std::uint64_t, Flow> flows_;
    std::unique_ptr<std::uint8_t[]> buf_;
    udp::endpoint from_;
    std::uint64_t dropped_queue_ = 0, bytes_ = 0, drops_logged_ = 0;
};

// The serving end of one UDP link: a UDP socket connected to the service, its replies framed back.
// Runs until the link ends (the use's flow expired or closed); `done` is called then.
void serve_udp_link(relay::StreamPtr link, std::unique_ptr<relay::LinkSeal> seal, std::shared_ptr<udp::socket> sock,
                    std::function<void(std::uint64_t bytes, const std::string& why)> done);

// The UDP source as the flow table keys it.
relay::UdpPeer udp_peer(const udp::endpoint& ep);

}  // namespace tn::relay
