// Base64 (RFC 4648, standard alphabet, padded) for the text formats that carry bytes: tn-exec's
// serve --stdio events and tn-route's Basic auth. One strict decoder, so every reader refuses the same
// inputs.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tn {

std::string base64_encode(std::string_view bytes);

// The bytes of canonical padded base64, or nothing for anything else: a length not a multiple of 4,
// a byte outside the alphabet (blanks and newlines included), '=' anywhere but the last two places, or
// non-zero bits left over before the padding.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace tn
