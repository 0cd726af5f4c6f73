// Secret: a string that never prints itself (tokens, passwords, private key material).
#pragma once

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

}  // namespace tn
