// UDP links, a UDP use's socket and flows, and the serving end's connected socket (io_udp_use.hpp).
#include "relay/io_udp_use.hpp"

#include <sys/socket.h>

#include <cstring>

namespace tn::relay {

using namespace relay;

namespace {
// Read buffer of a UDP link: one whole record of the largest size fits, so a record is opened in place.
constexpr std::size_t kInSize = kRecordMax + kRecordOverhead;
constexpr std::size_t kDatagramBuf = 65536;
}  // namespace

UdpPeer udp_peer(const udp::endpoint& ep) {
    UdpPeer p;
    auto a = ep.address();
    auto v6 = a.is_v4() ? asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()) : a.to_v6();
    auto b = v6.to_bytes();
    std::copy(b.begin(), b.end(), p.ip.begin());
    p.port = ep.port();
    return p;
}

// ---- UdpLink ----

UdpLink::UdpLink(StreamPtr link, std::unique_ptr<LinkSeal> seal, Deliver deliver, Ended ended)
    : link_(std::move(link)), seal_(std::move(seal)), deliver_(std::move(deliver)), ended_(std::move(ended)),
      in_(new std::uint8_t[kInSize]) {}

std::shared_ptr<UdpLink> UdpLink::start(StreamPtr link, std::unique_ptr<LinkSeal> seal, Deliver deliver, Ended ended, Bytes prefix,
                                        bool hold_read) {
    std::shared_ptr<UdpLink> l(new UdpLink(std::move(link), std::move(seal), std::move(deliver), std::move(ended)));
    l->next_ = std::move(prefix);
    if (!l->next_.empty()) l->flush();
    if (!hold_read) l->resume_read();
    return l;
}

void UdpLink::resume_read() {
    if (done_) return;
    // Records that came in behind the setup frame were read with it: they come first.
    have_ = link_->take_unread(in_.get(), kInSize);
    process();
    if (!done_) read();
}

void UdpLink::read() {
    auto self = shared_from_this();
    link_->async_read_some(asio::buffer(in_.get() + have_, kInSize - have_), [self](error_code ec, std::size_t n) {
        if (self->done_) return;
        if (ec) return self->end(ec == asio::error::eof ? "the link closed" : ec.message());
        self->have_ += n;
        self->process();
        if (!self->done_) self->read();
    });
}

void UdpLink::process() {
    std::size_t at = 0;
    try {
        while (have_ - at >= kRecordHeader) {
            auto h = seal_->rx.parse(std::span(in_.get() + at, kRecordHeader));
            if (have_ - at < h.size()) break;
            auto n = seal_->rx.open(std::span(in_.get() + at, h.size()), in_.get() + at + kRecordHeader);
            if (h.eof) {
                // Our EOF record back, so both directions end cleanly at the route (which then closes
                // both links: neither record keeps it); then the link closes.
                auto ended = std::move(ended_);
                close();
                if (ended) ended("the other end closed the flow");
                return;
            }
            frames_.feed(std::span(in_.get() + at + kRecordHeader, n), [this](std::span<const std::uint8_t> d) {
                received_ += d.size();
                if (!done_ && !closing_) deliver_(d);
            });
            if (done_) return;
            at += h.size();
        }
    } catch (const WireError& e) {
        return end(std::string("protocol error: ") + e.what());
    }
    std::memmove(in_.get(), in_.get() + at, have_ - at);
    have_ -= at;
}

bool UdpLink::send(std::span<const std::uint8_t> d) {
    if (done_ || closing_ || d.size() > kUdpMaxPayload) return false;
    auto overhead = seal_->tx.overhead();
    if (next_.size() + kUdpFrameHeader + d.size() + overhead > kQueueMax) return false;
    plain_.clear();
    append_udp_frame(plain_, d);
    auto at = next_.size();
    next_.resize(at + plain_.size() + overhead);
    next_.resize(at + seal_->tx.seal(plain_, next_.data() + at));
    sent_ += d.size();
    if (!writing_) flush();
    return true;
}

void UdpLink::flush() {
    if (next_.empty()) {
        if (closing_) end({});
        return;
    }
    out_.swap(next_);
    next_.clear();
    writing_ = true;
    auto self = shared_from_this();
    link_->async_write(asio::buffer(out_), [self](error_code ec, std::size_t) {
        self->writing_ = false;
        if (self->done_) return;
        if (ec) return self->end(ec.message());
        self->flush();
    });
}

void UdpLink::close() {
    if (done_ || closing_) return;
    closing_ = true;
    auto at = next_.size();
    next_.resize(at + seal_->tx.overhead());
    next_.resize(at + seal_->tx.seal_eof(next_.data() + at, false));
    ended_ = nullptr;  // our own close: nobody is told
    if (!writing_) flush();
}

void UdpLink::end(const std::string& why) {
    if (done_) return;
    done_ = true;
    link_->close();
    auto ended = std::move(ended_);
    deliver_ = nullptr;  // drops what it holds (the socket): no cycle outlives the link
    ended_ = nullptr;
    if (ended) ended(why);
}

// ---- UdpUse ----

UdpUse::UdpUse(udp::socket sock, UdpUseLimits limits, OpenFlow open_flow, log::Context log)
    : sock_(std::move(sock)), table_(limits.idle, limits.max_flows), open_flow_(std::move(open_flow)), log_(std::move(log)),
      timer_(sock_.get_executor()), buf_(new std::uint8_t[kDatagramBuf]) {}

void UdpUse::start() {
    error_code ec;
    sock_.non_blocking(true, ec);  // replies to a source whose buffer is full are dropped, never waited on
    receive();
}

void UdpUse::stop() {
    if (stopped_) return;
    stopped_ = true;
    error_code ec;
    sock_.close(ec);
    timer_.cancel();
    while (!flows_.empty()) {
        table_.on_closed(flows_.begin()->first);
        drop(flows_.begin());
    }
}

void UdpUse::receive() {
    auto self = shared_from_this();
    sock_.async_receive_from(asio::buffer(buf_.get(), kDatagramBuf), from_, [self](error_code ec, std::size_t n) {
        if (self->stopped_ || ec == asio::error::operation_aborted) return;
        // ECONNREFUSED and the like (an ICMP error for an earlier reply) do not end the use.
        if (!ec) self->on_datagram(n);
        self->receive();
    });
}

void UdpUse::on_datagram(std::size_t n) {
    // Over IPv6 a datagram may exceed what a frame carries (65,507): dropped whole, never cut.
    if (n > kUdpMaxPayload) {
        ++dropped_queue_;
        return;
    }
    std::span<const std::uint8_t> d(buf_.get(), n);
    auto r = table_.on_datagram(udp_peer(from_), UdpFlowTable::Clock::now());
    switch (r.verdict) {
    case UdpFlowTable::Verdict::drop:
        // Counted in `ctl show use`; logged once per 1000 so a flood does not flood the log too.
        if (drops_logged_++ % 1000 == 0)
            log_.warn("flow limit reached (udp_max_flows = ", table_.max_flows(), "): datagrams from new sources dropped (",
                      table_.dropped(), " so far)");
        return;
    case UdpFlowTable::Verdict::open: {
        auto& f = flows_[r.flow];
        f.src = from_;
        forward(f, d);
        arm_timer();
        return open_flow_(r.flow);
    }
    case UdpFlowTable::Verdict::forward:
        if (auto it = flows_.find(r.flow); it != flows_.end()) forward(it->second, d);
        return;
    }
}

void UdpUse::forward(Flow& f, std::span<const std::uint8_t> d) {
    if (f.link) {
        if (!f.link->send(d)) ++dropped_queue_;
        return;
    }
    if (f.early_bytes + d.size() > kEarlyMax) {
        ++dropped_queue_;
        return;
    }
    f.early.emplace_back(d.begin(), d.end());
    f.early_bytes += d.size();
}

std::shared_ptr<UdpLink> UdpUse::linked(std::uint64_t flow, StreamPtr link, std::unique_ptr<LinkSeal> seal, OnEnd on_end,
                                        Bytes open_frame) {
    auto it = flows_.find(flow);
    if (stopped_ || it == flows_.end()) {  // expired or stopped meanwhile
        link->close();
        on_end(0);
        return nullptr;
    }
    std::weak_ptr<UdpUse> weak = shared_from_this();
    auto src = it->second.src;
    auto deliver = [weak, flow, src](std::span<const std::uint8_t> d) {
        auto self = weak.lock();
        if (!self || self->stopped_) return;
        error_code ec;
        self->sock_.send_to(asio::buffer(d.data(), d.size()), src, 0, ec);
        self->bytes_ += d.size();
        self->table_.on_reply(flow, UdpFlowTable::Clock::now());
    };
    auto ended = [weak, flow](const std::string& why) {
        auto self = weak.lock();
        if (!self) return;
        self->log_.debug("flow ", flow, " ended: ", why);
        self->closed(flow);
    };
    auto& f = it->second;
    f.on_end = std::move(on_end);
    f.link = UdpLink::start(std::move(link), std::move(seal), deliver, ended, std::move(open_frame), true);
    for (auto& d : f.early)
        if (!f.link->send(d)) ++dropped_queue_;
    bytes_ += f.early_bytes;
    f.early.clear();
    f.early_bytes = 0;
    return f.link;
}

void UdpUse::failed(std::uint64_t flow, const std::string& why) {
    if (flows_.count(flow)) log_.warn("flow ", flow, ": no link to the serve: ", why);
    closed(flow);
}

void UdpUse::closed(std::uint64_t flow) {
    table_.on_closed(flow);
    if (auto it = flows_.find(flow); it != flows_.end()) drop(it);
}

void UdpUse::drop(std::map<std::uint64_t, Flow>::iterator it) {
    auto link = std::move(it->second.link);
    auto on_end = std::move(it->second.on_end);
    flows_.erase(it);
    if (link) link->close();
    if (on_end) on_end(link ? link->bytes() : 0);
}

void UdpUse::arm_timer() {
    if (timer_armed_ || stopped_) return;
    auto d = table_.next_deadline();
    if (!d) return;
    timer_armed_ = true;
    timer_.expires_at(*d);
    timer_.async_wait([self = shared_from_this()](error_code ec) {
        self->timer_armed_ = false;
        if (!ec && !self->stopped_) self->expire();
    });
}

void UdpUse::expire() {
    for (auto id : table_.tick(UdpFlowTable::Clock::now())) {
        auto it = flows_.find(id);
        if (it == flows_.end()) continue;
        log_.debug("flow ", id, " idle: closed");
        drop(it);
    }
    arm_timer();
}

// ---- the serving end ----

namespace {
struct ServeFlow {
    std::shared_ptr<udp::socket> sock;
    std::shared_ptr<UdpLink> link;
    std::unique_ptr<std::uint8_t[]> buf{new std::uint8_t[kDatagramBuf]};
};
void serve_receive(std::shared_ptr<ServeFlow> f) {
    f->sock->async_receive(asio::buffer(f->buf.get(), kDatagramBuf), [f](error_code ec, std::size_t n) {
        if (ec == asio::error::operation_aborted || !f->sock->is_open() || f->link->ended()) return;
        // A refused datagram (ICMP port unreachable: the service is not up yet) is not the end.
        if (!ec && n <= kUdpMaxPayload) f->link->send(std::span(f->buf.get(), n));  // a larger one (IPv6) is dropped whole
        serve_receive(f);
    });
}
}  // namespace

void serve_udp_link(StreamPtr link, std::unique_ptr<LinkSeal> seal, std::shared_ptr<udp::socket> sock,
                    std::function<void(std::uint64_t, const std::string&)> done) {
    auto f = std::make_shared<ServeFlow>();
    f->sock = sock;
    error_code ec;
    sock->non_blocking(true, ec);
    std::weak_ptr<ServeFlow> weak = f;
    auto deliver = [sock](std::span<const std::uint8_t> d) {
        error_code ec2;
        sock->send(asio::buffer(d.data(), d.size()), 0, ec2);  // a full or refused socket drops it, as UDP does
    };
    auto ended = [weak, sock, done](const std::string& why) {
        error_code ec2;
        sock->close(ec2);
        auto f2 = weak.lock();
        done(f2 && f2->link ? f2->link->bytes() : 0, why);
    };
    f->link = UdpLink::start(std::move(link), std::move(seal), deliver, ended);
    if (!f->link->ended()) serve_receive(f);
}

}  // namespace tn::relay
