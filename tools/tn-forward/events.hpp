// --events: JSON Lines on stdout (connected, forward_up, lost, reconnecting, stopped), for scripts.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace tn::forward {

class EventSink {
public:
    explicit EventSink(bool enabled) : enabled_(enabled) {}
    // Fields are strings or numbers already rendered; `numeric` marks which need no quotes.
    void emit(std::string_view type, std::initializer_list<std::pair<std::string_view, std::string>> fields = {},
              std::initializer_list<std::pair<std::string_view, long long>> numbers = {}) const;

private:
    bool enabled_;
};

}  // namespace tn::forward
