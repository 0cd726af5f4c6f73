// Formatting and parsing of the handshake timestamp record.
#include "tun/persist.hpp"

#include <sodium.h>

#include <sstream>

#include "base/error.hpp"

namespace tn::tun {

std::string format_timestamps(const std::vector<std::pair<Key, Timestamp>>& ts) {
    std::string out;
    for (auto& [k, t] : ts) out += key_to_base64(k) + " " + to_hex(Bytes(t.data(), t.size())) + "\n";
    return out;
}

std::vector<std::pair<Key, Timestamp>> parse_timestamps(std::string_view text) {
    std::vector<std::pair<Key, Timestamp>> out;
    std::istringstream in{std::string(text)};
    for (std::string line; std::getline(in, line);) {
        std::istringstream words(line);
        std::string key, hex, extra;
        if (!(words >> key >> hex) || (words >> extra) || hex.size() != 24) continue;
        std::pair<Key, Timestamp> e;
        try {
            e.first = key_from_base64(key);
        } catch (const ParseError&) {
            continue;
        }
        std::size_t n = 0;
        crypto_init();
        if (sodium_hex2bin(e.second.data(), e.second.size(), hex.data(), hex.size(), nullptr, &n, nullptr) != 0 ||
            n != e.second.size())
            continue;
        out.push_back(e);
    }
    return out;
}

TimestampLog::TimestampLog(std::string_view file_text) {
    for (auto& [k, t] : parse_timestamps(file_text)) {
        auto& kept = record_[k];
        kept = std::max(kept, t);
    }
}

std::string TimestampLog::accept(const Key& k, const Timestamp& t) {
    auto& kept = record_[k];
    kept = std::max(kept, t);
    ++appended_;
    return format_timestamps({{k, kept}});
}

std::string TimestampLog::whole() const { return format_timestamps({record_.begin(), record_.end()}); }

}  // namespace tn::tun
