// Sealed and plain link records (lib/relay/seal) as the other end of a link sends them, and the key
// boxes of LINK_OPEN/LINK_OK. The first byte picks the cipher; the rest is the record stream. A plain
// link (cipher none) parses every record; sealed ones must refuse forged tags without touching memory
// they do not own.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "relay/seal.hpp"

using namespace tn::relay;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::span<const std::uint8_t> in(data + 1, size - 1);
    const Cipher cipher = static_cast<Cipher>(data[0] % 3);
    LinkKey key{};
    for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i * 7 + 1);

    // A key box as a peer sends it: at most one opens, and only for the right ticket and challenge.
    if (in.size() >= kKeyBoxSize) {
        KeyBox box{};
        std::copy_n(in.begin(), kKeyBoxSize, box.begin());
        try {
            (void)open_key_box(Ticket{}, Nonce{}, 7, box, (data[0] & 4) ? BoxWay::to_route : BoxWay::to_vnet,
                               static_cast<Cipher>(data[0] >> 4));
        } catch (const WireError&) {
        }
    }

    RecordOpener rx(cipher, key, Side::use);
    std::vector<std::uint8_t> out;
    std::size_t at = 0;
    try {
        while (in.size() - at >= kRecordHeader) {
            auto h = rx.parse(in.subspan(at, kRecordHeader));
            if (h.plain > kRecordMax) __builtin_trap();  // head() promises to refuse this first
            if (in.size() - at < h.size()) break;        // the rest of the record never arrives
            // Never an empty (null) buffer: RecordOpener::open computes out + l for an EOF record too
            // (/work/notes/fuzz_findings.md F1); the pump always passes a real one.
            out.resize(std::max<std::size_t>(h.plain, 1));
            std::size_t n = rx.open(in.subspan(at, h.size()), out.data());
            if (n != (h.eof ? 0 : h.plain)) __builtin_trap();
            at += h.size();
        }
    } catch (const WireError&) {
        // A bad record closes the link.
    }
    // The pump opens in place, too: the plaintext lands just after the header it came with.
    RecordOpener in_place(cipher, key, Side::use);
    std::vector<std::uint8_t> copy(in.begin(), in.end());
    try {
        if (copy.size() >= kRecordHeader) {
            auto h = in_place.parse(std::span<const std::uint8_t>(copy).first(kRecordHeader));
            if (copy.size() >= h.size())
                (void)in_place.open(std::span<const std::uint8_t>(copy).first(h.size()), copy.data() + kRecordHeader);
        }
    } catch (const WireError&) {
    }
    return 0;
}
