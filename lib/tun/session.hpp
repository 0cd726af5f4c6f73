// A transport keypair (doc/PROTOCOL.tun.md §4): counter nonces, the sliding replay window, and the
// age and message limits after which a keypair is rekeyed or refused. No I/O.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>

#include "tun/crypto.hpp"
#include "tun/wire.hpp"

namespace tn::tun {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using std::chrono::seconds;

// WireGuard's timer constants; the reasons are in PROTOCOL.tun.md §6.
inline constexpr seconds rekey_after_time{120};
inline constexpr seconds reject_after_time{180};
inline constexpr seconds rekey_timeout{5};
inline constexpr std::uint64_t rekey_after_messages = std::uint64_t(1) << 60;
// Far below 2^64 so a counter can never wrap and a nonce can never repeat.
inline constexpr std::uint64_t reject_after_messages = ~std::uint64_t(0) - (std::uint64_t(1) << 13);

// A sliding window over received counters (RFC 6479 style): 32 words of 64 bits, so the newest
// 1984 counters behind the highest one seen are tracked exactly; anything older is refused.
class ReplayWindow {
public:
    static constexpr std::size_t words = 32;
    static constexpr std::uint64_t window = (words - 1) * 64;

    // Would `c` be accepted? Called before decryption, so forged packets cost no state.
    bool check(std::uint64_t c) const;
    // Marks `c` as seen; call only after the packet authenticated. False if it was already seen.
    bool update(std::uint64_t c);
    std::uint64_t highest() const { return next_ == 0 ? 0 : next_ - 1; }

private:
    std::uint64_t next_ = 0;  // one past the highest counter seen (0: none yet)
    std::array<std::uint64_t, words> bits_{};
};

struct Keypair {
    Key send{};
    Key recv{};
    std::uint32_t local_index = 0;   // what the peer puts in `receiver` when it sends to us
    std::uint32_t remote_index = 0;  // what we put in `receiver` when we send
    std::uint64_t send_counter = 0;
    ReplayWindow replay;
    TimePoint created{};
    bool initiator = false;
    Suite suite = Suite::chacha20_poly1305;

    ~Keypair() {
        wipe(send.data(), send.size());
        wipe(recv.data(), recv.size());
    }
    bool expired(TimePoint now) const { return now - created >= reject_after_time; }
    bool wants_rekey(TimePoint now) const {
        return send_counter >= rekey_after_messages || now - created >= rekey_after_time;
    }
};

// Encrypts the `plain_len` bytes at buf + transport_header_len in place and writes the header in front.
// Returns the datagram length, or 0 when the keypair may not send any more (too old or counter spent).
std::size_t seal(Keypair& kp, MsgType type, std::uint8_t* buf, std::size_t plain_len, TimePoint now);

enum class OpenError { expired, replay, auth };
// Authenticates and decrypts a classified transport datagram in place (plaintext at
// dgram + transport_header_len). Returns the plaintext length.
struct OpenResult {
    std::optional<std::size_t> len;
    OpenError error = OpenError::auth;
};
OpenResult open(Keypair& kp, std::uint8_t* dgram, std::size_t dgram_len, std::uint64_t counter, TimePoint now);

}  // namespace tn::tun
