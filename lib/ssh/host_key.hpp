// The host-key policy: what to do with the known_hosts verdict. Pure, so every branch is unit-tested.
#pragma once

#include <string_view>

namespace tn::ssh {

enum class KnownHostState { ok, changed, other_type, unknown, error };
enum class HostKeyAction { proceed, pin, refuse_unknown, refuse_changed, fail };

// Unknown keys are refused unless the user asked to pin them; a changed key is never accepted
// (a key of another type for a known host counts as changed, as in OpenSSH).
constexpr HostKeyAction decide_host_key(KnownHostState s, bool accept_new) {
    switch (s) {
    case KnownHostState::ok: return HostKeyAction::proceed;
    case KnownHostState::changed:
    case KnownHostState::other_type: return HostKeyAction::refuse_changed;
    case KnownHostState::unknown: return accept_new ? HostKeyAction::pin : HostKeyAction::refuse_unknown;
    case KnownHostState::error: return HostKeyAction::fail;
    }
    return HostKeyAction::fail;
}

}  // namespace tn::ssh
