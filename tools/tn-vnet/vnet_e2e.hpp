// End-to-end links on the vnet (doc/PROTOCOL.relay.md §12): the handshake's two records run over the
// link right after its setup frames, and the record layer then switches to the keys it derived, which
// the route never learns. The codec and key schedule are relay/e2e (pure); this is their I/O.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "relay/e2e.hpp"
#include "relay/io_stream.hpp"

namespace tn::vnet {

// Called once: ok with the link's record layer under the end-to-end keys, or why the handshake failed
// (the caller closes the link and logs one line).
using E2eDone = std::function<void(bool ok, std::string why, std::unique_ptr<relay::LinkSeal> seal)>;

// The using side's half-done handshake: its ephemeral, and the seal its first record went under.
struct E2eUse {
    E2eUse(const relay::E2eSecret& s, std::uint16_t serve, std::unique_ptr<relay::LinkSeal> o);
    ~E2eUse();
    relay::E2eSecret secret;
    std::uint16_t serve_id;
    relay::E2eEphemeral eph;
    std::unique_ptr<relay::LinkSeal> outer;
};

// The LINK_OPEN cipher byte of a vnet: the route's cipher, with the e2e flag when e2e_secret is set.
std::uint8_t link_cipher_byte(bool tls, bool e2e);

// Appends the using side's handshake record to `first` (behind LINK_OPEN, in the same write).
std::shared_ptr<E2eUse> e2e_use_begin(const relay::E2eSecret& secret, std::uint16_t serve_id,
                                      std::unique_ptr<relay::LinkSeal> outer, relay::Bytes& first);
// Then: reads LINK_OPENED (or the route's ERROR) and the serving side's answer, and checks it.
void e2e_use_finish(const relay::StreamPtr& s, std::shared_ptr<E2eUse> hs, E2eDone done);
// The serving side, once LINK_OK (with the e2e flag) is in: reads the using side's record, checks it,
// and answers in one record under `outer`.
void e2e_serve(const relay::StreamPtr& s, std::unique_ptr<relay::LinkSeal> outer, const relay::E2eSecret& secret,
               relay::E2eContext ctx, E2eDone done);

}  // namespace tn::vnet
