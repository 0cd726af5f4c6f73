// authorized_keys planning: find the key by its type and blob, whatever options or comment surround it.
#include "authorized_keys.hpp"

#include <sstream>
#include <vector>

#include "base/error.hpp"
#include "base/strings.hpp"

namespace tn::keysetup {

namespace {
std::vector<std::string> words(const std::string& line) {
    std::istringstream ss(line);
    std::vector<std::string> out;
    for (std::string w; ss >> w;) out.push_back(w);
    return out;
}
}  // namespace

AppendPlan plan_authorized_keys(const std::string& existing, const std::string& public_key_line) {
    auto key = words(public_key_line);
    if (key.size() < 2) throw ParseError("not a public key line: \"" + public_key_line + "\"");
    const std::string& blob = key[1];  // base64 of the key itself, type included: its identity
    for (const auto& raw : split(existing, '\n')) {
        auto line = trim(raw);
        if (line.empty() || line.front() == '#') continue;
        // Options may come before the key and comments after it; the blob as a whole word is enough.
        for (const auto& w : words(std::string(line)))
            if (w == blob) return {true, {}};
    }
    AppendPlan plan;
    if (!existing.empty() && existing.back() != '\n') plan.append = "\n";
    plan.append += std::string(trim(public_key_line)) + "\n";
    return plan;
}

}  // namespace tn::keysetup
