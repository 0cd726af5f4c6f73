// The authorized_keys edit as a pure function: what to append so the key is present exactly once.
#pragma once

#include <string>

namespace tn::keysetup {

struct AppendPlan {
    bool present = false;  // the key is already authorized (options and comments aside)
    std::string append;    // bytes to append; empty when present
};

// Keeps every existing byte: only appends, adding the missing final newline of the last line first.
AppendPlan plan_authorized_keys(const std::string& existing, const std::string& public_key_line);

}  // namespace tn::keysetup
