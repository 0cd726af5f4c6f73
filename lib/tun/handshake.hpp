// The Noise-IK-style handshake of doc/PROTOCOL.tun.md §4: mutual authentication by static X25519
// keys, forward secrecy by ephemeral keys, a timestamp against replay and mac1 against cheap floods.
// Pure functions over byte buffers: callers supply the ephemeral keys, index and time, so tests can
// reproduce the test vectors exactly.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>

#include "tun/crypto.hpp"
#include "tun/session.hpp"

namespace tn::tun {

using Timestamp = std::array<std::uint8_t, 12>;  // seconds (u64 BE) + nanoseconds (u32 BE) since 1970
Timestamp make_timestamp(std::chrono::system_clock::time_point t);
// Revision 5 (PROTOCOL.tun.md §4): the top bit of the nanoseconds field, never set by a clock (they stay
// below 10^9 < 2^30), says the initiator can use AES-256-GCM. It travels encrypted and in the hash.
inline constexpr std::size_t ts_offer_byte = 8;
inline constexpr std::uint8_t ts_offer_aes = 0x80;

struct InitiatorState {
    Key ck{}, h{};
    KeyPair eph;
    std::uint32_t sender = 0;
    Key remote_static{};
    bool offered_aes = false;  // revision 5: the response then names the suite
    InitiatorState() = default;
    InitiatorState(const InitiatorState&) = default;
    InitiatorState& operator=(const InitiatorState&) = default;
    ~InitiatorState() { wipe(ck.data(), ck.size()); }
};

// Writes an initiation_len-byte message into `out`. nullopt if `remote_static` is a bad point.
// `offer_aes` sets the timestamp's offer bit (revision 5).
std::optional<InitiatorState> create_initiation(const KeyPair& local, const Key& remote_static, const KeyPair& eph,
                                                const Timestamp& ts, std::uint32_t sender, std::uint8_t* out,
                                                bool offer_aes = false);
// The pre-shared key of a peer that has none (PROTOCOL.tun.md §4: 32 zero bytes, as in WireGuard).
inline constexpr Key no_psk{};

// Checks a response to `st`; on success the initiator's transport keypair, in the suite the response
// names (always ChaCha20-Poly1305 when `st` offered nothing). `psk` must be the one the responder
// used, else the response does not authenticate.
std::optional<Keypair> consume_response(const InitiatorState& st, const KeyPair& local, Bytes msg, TimePoint now,
                                        const Key& psk = no_psk);

enum class HandshakeReject { mac1, decrypt };
struct ResponderState {
    Key ck{}, h{};
    Key remote_eph{};
    Key remote_static{};
    std::uint32_t remote_sender = 0;
    Timestamp ts{};  // with the offer bit cleared: the time alone, compared for freshness
    bool offers_aes = false;  // revision 5: the initiator can use AES-256-GCM and reads the suite byte
    ResponderState() = default;
    ResponderState(const ResponderState&) = default;
    ResponderState& operator=(const ResponderState&) = default;
    ~ResponderState() { wipe(ck.data(), ck.size()); }
};
// Checks mac1 first (one hash, no DH) and then decrypts the initiator's static key and timestamp.
// The caller then decides whether it knows that static key and whether the timestamp is fresh.
struct ConsumeResult {
    std::optional<ResponderState> state;
    HandshakeReject reject = HandshakeReject::mac1;
};
ConsumeResult consume_initiation(const KeyPair& local, Bytes msg);
// Only mac1, for the rate limiter to run between the cheap check and the expensive one.
bool initiation_mac1_ok(const Key& local_pub, Bytes msg);
// Writes a response_len-byte message into `out`; the responder's transport keypair, or nullopt on a
// bad point.
// `psk` is the initiator's pre-shared key (no_psk for none), mixed into the chaining key the
// transport keys come from. `suite` is the responder's choice; AES-256-GCM only when st.offers_aes
// (otherwise the response is revision 4's, byte for byte, and the suite ChaCha20-Poly1305).
std::optional<Keypair> create_response(const ResponderState& st, const KeyPair& eph, std::uint32_t sender,
                                       std::uint8_t* out, TimePoint now, const Key& psk = no_psk,
                                       Suite suite = Suite::chacha20_poly1305);

}  // namespace tn::tun
