// The flow table of a UDP use: one flow per source, idle expiry and the cap on flows.
#include "relay/udp_flows.hpp"

namespace tn::relay {

UdpFlowTable::Route UdpFlowTable::on_datagram(const UdpPeer& from, Clock::time_point now) {
    if (auto it = by_peer_.find(from); it != by_peer_.end()) {
        flows_[it->second].last = now;
        return {Verdict::forward, it->second};
    }
    if (flows_.size() >= max_) {
        ++dropped_;
        return {Verdict::drop, 0};
    }
    auto id = next_id_++;
    flows_.emplace(id, Flow{from, now});
    by_peer_.emplace(from, id);
    ++opened_;
    return {Verdict::open, id};
}

void UdpFlowTable::on_reply(std::uint64_t flow, Clock::time_point now) {
    if (auto it = flows_.find(flow); it != flows_.end()) it->second.last = now;
}

void UdpFlowTable::on_closed(std::uint64_t flow) {
    auto it = flows_.find(flow);
    if (it == flows_.end()) return;
    by_peer_.erase(it->second.peer);
    flows_.erase(it);
}

std::vector<std::uint64_t> UdpFlowTable::tick(Clock::time_point now) {
    std::vector<std::uint64_t> out;
    for (auto it = flows_.begin(); it != flows_.end();) {
        if (now - it->second.last >= idle_) {
            out.push_back(it->first);
            by_peer_.erase(it->second.peer);
            it = flows_.erase(it);
            ++expired_;
        } else {
            ++it;
        }
    }
    return out;
}

std::optional<UdpFlowTable::Clock::time_point> UdpFlowTable::next_deadline() const {
    std::optional<Clock::time_point> d;
    for (const auto& [id, f] : flows_)
        if (!d || f.last + idle_ < *d) d = f.last + idle_;
    return d;
}

std::optional<UdpPeer> UdpFlowTable::peer(std::uint64_t flow) const {
    auto it = flows_.find(flow);
    if (it == flows_.end()) return std::nullopt;
    return it->second.peer;
}

}  // namespace tn::relay
