// Small string helpers shared by every tool: quoting for a remote shell, edit distance, splitting.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tn {

// POSIX sh single-quoting: the result is one word whatever `word` holds.
std::string shell_quote(std::string_view word);

// Joins argv words, each quoted only when it needs to be, so the remote shell sees them verbatim.
std::string shell_join(const std::vector<std::string>& words);

std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, if it is close enough to be a plausible typo.
std::optional<std::string> closest_match(std::string_view word, const std::vector<std::string>& candidates);

std::vector<std::string> split(std::string_view s, char sep);
std::string_view trim(std::string_view s);

// Parses a decimal integer in [lo, hi]; nullopt on anything else (sign junk, overflow, trailing text).
std::optional<long long> parse_int(std::string_view s, long long lo, long long hi);

// Escapes a string for inclusion in a JSON document (quotes included). Bytes >= 0x80 pass as they are.
std::string json_quote(std::string_view s);

// Text from a peer or a user made safe for a log line or a terminal: C0 controls, DEL and C1 controls
// (U+0080-U+009F) become visible escapes (\n, \r, \t, \xNN, \u00NN), and so does every byte that is
// not part of valid UTF-8 (a lone 0x9b is CSI to an 8-bit terminal). Characters in `keep` (ASCII
// controls such as "\n\t" for multi-line tables) pass. Printable text, UTF-8 included, is unchanged.
std::string escape_controls(std::string_view s, std::string_view keep = {});

// json_quote that always yields valid JSON whatever the input: C0, DEL and C1 as \u00NN, and bytes
// that are not valid UTF-8 as U+FFFD (for log lines and peer-supplied names).
std::string json_quote_text(std::string_view s);

}  // namespace tn
