// Secret: a string that never prints itself (tokens, passwords, private key material).
#pragma once

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <utility>

namespace tn {

class Secret {
public:
    Secret() = default;
    explicit Secret(std::string value) : value_(std::move(value)) {}
    Secret(const Secret&) = default;
    Secret& operator=(const Secret&) = default;
    Secret(Secret&&) noexcept = default;
    Secret& operator=(Secret&&) noexcept = default;
    ~Secret() { wipe(); }

    // The only way to the value: callers must ask for it by name, so a log line never gets it by accident.
    const std::string& expose() const { return value_; }
    bool empty() const { return value_.empty(); }

    friend std::ostream& operator<<(std::ostream& os, const Secret&) { return os << "MASKED"; }

private:
    void wipe() {
        volatile char* p = value_.data();
        for (std::size_t i = 0; i < value_.size(); ++i) p[i] = 0;
    }
    std::string value_;
};

// The warning to log once at start when a file holding a secret (a token, a private key, a config
// with a token in it) can be read by its group or by others, as ssh warns about an unprotected key;
// nullopt when it is private (or cannot be stat-ed: opening it reports that). Library code does not
// log, so each tool logs what this returns.
inline std::optional<std::string> secret_file_warning(const std::filesystem::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || (st.st_mode & 077) == 0) return std::nullopt;
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return path.string() + " holds a secret but is readable by " + ((st.st_mode & 007) ? "others" : "its group") +
           " (mode " + mode + "): run 'chmod 600 " + path.string() + "'";
}

}  // namespace tn
