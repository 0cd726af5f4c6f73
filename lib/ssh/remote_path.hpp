// Remote path pieces for transfers: SFTP paths are '/'-separated strings, whatever the local system.
#pragma once

#include <string>
#include <utility>

namespace tn::ssh {

inline std::string remote_join(const std::string& dir, const std::string& name) {
    if (dir.empty() || dir == ".") return name;
    return dir.back() == '/' ? dir + name : dir + "/" + name;
}

// "a/b/c" -> {"a/b", "c"}; "c" -> {"", "c"}; "/c" -> {"/", "c"}; trailing slashes dropped.
inline std::pair<std::string, std::string> remote_split(std::string p) {
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    auto slash = p.rfind('/');
    if (slash == std::string::npos) return {"", p};
    return {slash == 0 ? "/" : p.substr(0, slash), p.substr(slash + 1)};
}

}  // namespace tn::ssh
