// The non-template half of the TUN<->UDP packet path: validating what a TUN read holds, and the
// coalesced writes back to the TUN.
#include "datapath.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace tn::tuntool {

bool offload_wanted() {
    const char* v = std::getenv("TN_TUN_OFFLOAD");
    return !(v && std::strcmp(v, "0") == 0);
}

bool TunReader::split(std::size_t n, tun::SegmentPlan& plan) {
    if (n <= tun::vnet_hdr_len) {
        ++dropped_;
        return false;
    }
    tun::Bytes pkt(buf_.data() + tun::vnet_hdr_len, n - tun::vnet_hdr_len);
    auto p = tun::plan_segments(tun::read_vnet_hdr(buf_.data()), pkt);
    // Every packet must fit a send slot: an MTU above max_inner_len or a bogus gso_size is dropped.
    if (!p || (p->gso ? p->hdr_len + p->gso_size : pkt.size()) > tun::max_inner_len) {
        ++dropped_;
        return false;
    }
    plan = *p;
    return true;
}

void TunWriter::write(const iovec* iov, int n) {
    // The TUN queue is rarely full; when it is, the packet is dropped, as a router would.
    if (::writev(tun_.fd(), iov, n) < 0 && errno != EAGAIN) ++errors_;
}

void TunWriter::flush() {
    if (pkts_.empty()) return;
    if (!tun_.offload()) {
        for (auto& p : pkts_) {
            iovec v{p.data, p.len};
            write(&v, 1);
        }
        pkts_.clear();
        return;
    }
    tun::coalesce(pkts_, groups_, tun::max_super_packet, UdpSocket::max_gso_segments);
    for (auto& g : groups_) {
        tun::write_vnet_hdr(g.hdr, hdr_);
        iov_.clear();
        iov_.push_back({hdr_, sizeof hdr_});
        iov_.push_back({pkts_[g.first].data, pkts_[g.first].len});
        for (std::size_t i = g.first + 1; i < g.first + g.count; ++i)
            iov_.push_back({pkts_[i].data + g.skip, pkts_[i].len - g.skip});
        write(iov_.data(), static_cast<int>(iov_.size()));
    }
    pkts_.clear();
}

}  // namespace tn::tuntool
