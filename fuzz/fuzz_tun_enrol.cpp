// The config editor behind `tn-tun server add-peer` / `remove-peer` (tools/tn-tun/enrol): pure text
// edits of a server config that an admin wrote by hand, so any bytes may come in. Byte 0 picks the
// peer name and whether a pre-shared key file is named; the rest is the config. Besides "no crash,
// no hang, no exception but tn::Error": removing what was just appended always works; what a removal
// leaves is the old file's lines in order and holds no table of that name any more; and on a file
// without tables of its own, append then remove gives the file back byte for byte.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.hpp"
#include "tools/tn-tun/enrol.hpp"

namespace {

const char* const names[] = {"laptop", "a", "x.y-z_9", "office"};
constexpr const char* key = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

// Whether every line of `part` is a line of `whole`, in the same order (the first may be shorter:
// a trimmed blank line at the end).
bool lines_in_order(std::string_view part, std::string_view whole) {
    std::size_t at = 0;
    while (!part.empty()) {
        std::size_t nl = part.find('\n');
        std::string_view line = part.substr(0, nl == std::string_view::npos ? part.size() : nl + 1);
        std::size_t found = whole.find(line, at);
        if (found == std::string_view::npos) return false;
        at = found + line.size();
        part.remove_prefix(line.size());
    }
    return true;
}

void check_removal(const std::string& config, const std::string& name) {
    std::string out;
    try {
        out = tn::tuntool::remove_peer_text(config, name);
    } catch (const tn::Error& e) {
        if (e.code() != tn::ExitCode::config) __builtin_trap();
        return;
    }
    if (out.size() >= config.size() || !lines_in_order(out, config)) __builtin_trap();
    try {
        (void)tn::tuntool::remove_peer_text(out, name);
        __builtin_trap();  // a table of that name survived
    } catch (const tn::Error&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0 || size > 64 * 1024) return 0;
    std::string config(reinterpret_cast<const char*>(data + 1), size - 1);
    std::string name = names[data[0] % 4];
    std::optional<std::string> psk;
    if (data[0] & 4) psk = name + ".psk";
    check_removal(config, name);
    std::string added = tn::tuntool::append_peer(config, name, key, psk);
    if (added.compare(0, config.size(), config) != 0 || added.back() != '\n') __builtin_trap();
    std::string back;
    try {
        back = tn::tuntool::remove_peer_text(added, name);
    } catch (const tn::Error&) {
        __builtin_trap();  // the table just appended must be found
    }
    bool plain = !config.empty() && config.ends_with("\n") && !config.ends_with("\n\n") &&
                 config.find("[[") == std::string::npos && config.find('[') == std::string::npos;
    if (plain && back != config) __builtin_trap();
    return 0;
}
