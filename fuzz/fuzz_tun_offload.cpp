// The TUN offload code (lib/tun/offload) on what the kernel hands tn-tun and on decrypted packets a
// peer sent: a virtio_net_hdr + packet is split into segments (each written to a buffer of exactly
// the size the plan promises, so ASan sees any overrun), the segments are coalesced back, and
// arbitrary packets cut from the input are coalesced too. Coalescing must place every packet in
// exactly one group, in order, within the caps.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "tun/offload.hpp"

using namespace tn::tun;

namespace {

void check_groups(std::span<InnerPacket> pkts, std::size_t max_bytes, std::size_t max_segments) {
    std::vector<TunGroup> groups;
    coalesce(pkts, groups, max_bytes, max_segments);
    std::size_t next = 0;
    for (const auto& g : groups) {
        if (g.first != next || g.count == 0 || g.count > max_segments) __builtin_trap();
        if (g.first + g.count > pkts.size()) __builtin_trap();
        if (g.count > 1 && g.bytes > max_bytes) __builtin_trap();
        for (std::size_t i = g.first + 1; i < g.first + g.count; ++i)
            if (g.skip > pkts[i].len) __builtin_trap();
        next = g.first + g.count;
    }
    if (next != pkts.size()) __builtin_trap();
}

// Splits `in` into packets by a 2-byte length before each (capped), copies each into its own
// allocation so reads past a packet's end are caught.
std::vector<std::unique_ptr<std::uint8_t[]>> cut(std::span<const std::uint8_t> in, std::vector<InnerPacket>& pkts) {
    std::vector<std::unique_ptr<std::uint8_t[]>> owned;
    std::size_t at = 0;
    while (in.size() - at >= 2 && pkts.size() < 80) {
        std::size_t len = ((std::size_t(in[at]) << 8) | in[at + 1]) % 1600;
        at += 2;
        len = std::min(len, in.size() - at);
        owned.emplace_back(new std::uint8_t[len + 1]);
        std::memcpy(owned.back().get(), in.data() + at, len);
        pkts.push_back({owned.back().get(), len});
        at += len;
    }
    return owned;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < vnet_hdr_len + 1 || size > max_super_packet + vnet_hdr_len + 1) return 0;
    const std::uint8_t mode = data[0];
    std::span<const std::uint8_t> in(data + 1, size - 1);

    if ((mode & 1) == 0) {
        // TUN read side: segment, then coalesce what came out (the receive side of the peer).
        std::vector<std::uint8_t> pkt(in.begin() + vnet_hdr_len, in.end());
        auto plan = plan_segments(read_vnet_hdr(in.data()), pkt);
        if (!plan) return 0;
        if (plan->count == 0 || plan->count > max_super_packet) __builtin_trap();
        std::vector<std::unique_ptr<std::uint8_t[]>> owned;
        std::vector<InnerPacket> segs;
        const std::size_t room = plan->gso ? plan->hdr_len + plan->gso_size : pkt.size();
        for (std::size_t k = 0; k < plan->count && k < 200; ++k) {
            owned.emplace_back(new std::uint8_t[room]);
            std::size_t n = write_segment(*plan, pkt, k, owned.back().get());
            if (n > room) __builtin_trap();
            segs.push_back({owned.back().get(), n});
        }
        check_groups(segs, max_super_packet, 64);
    } else {
        // Receive side: whatever a peer managed to get through decryption, grouped for the TUN.
        std::vector<InnerPacket> pkts;
        auto owned = cut(in, pkts);
        check_groups(pkts, (mode & 2) ? max_super_packet : 3000, (mode & 4) ? 64 : 3);
    }
    return 0;
}
