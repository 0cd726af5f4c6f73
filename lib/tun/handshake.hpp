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

struct InitiatorState {
    Key ck{}, h{};
    KeyPair eph;
    std::uint32_t sender = 0;
    Key remote_static{};
    InitiatorState() = default;
    InitiatorState(const InitiatorState&) = default;
    InitiatorState& operator=(const InitiatorState&) = default;
    ~InitiatorState() { wipe(ck.data(), ck.size()); }
};

// Writes an initiation_len-byte message into `out`. nullopt if `remote_static` is a bad point.
std::optional<InitiatorState> create_initiation(const KeyPair& local, const Key& remote_static, const KeyPair& eph,
                                                const Timestamp& ts, std::uint32_t sender, std::uint8_t* out);
// The pre-shared key of a peer that has none (PROTOCOL.tun.md §4: 32 zero bytes, as in WireGuard).
inline constexpr Key no_psk{};

// Checks a response to `st`; on success the initiator's transport keypair. `psk` must be the one the
// responder used, else the response does not authenticate.
std::optional<Keypair> consume_response(const InitiatorState& st, const KeyPair& local, Bytes msg, TimePoint now,
                                        const Key& psk = no_psk);

enum class HandshakeReject { mac1, decrypt };
struct ResponderState {
    Key ck{}, h{};
    Key remote_eph{};
    Key remote_static{};
    std::uint32_t remote_sender = 0;
    Timestamp ts{};
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
// transport keys come from.
std::optional<Keypair> create_response(const ResponderState& st, const KeyPair& eph, std::uint32_t sender,
                                       std::uint8_t* out, TimePoint now, const Key& psk = no_psk);

}  // namespace tn::tun
