// Status renderings. Times are wall-clock UTC like the log lines, so they can be matched with them.
#include "status.hpp"

#include "base/log.hpp"
#include "base/strings.hpp"

namespace tn::forward {

std::string render_text(const Status& s) {
    std::string out = "tn-forward pid " + std::to_string(s.pid) + " (" + s.instance + ")\n";
    out += "  server:     " + s.server + "\n";
    out += "  state:      " + s.state + " since " + log::iso8601_utc(s.since) + "\n";
    out += "  reconnects: " + std::to_string(s.reconnects) + "\n";
    out += "  last loss:  " + (s.last_loss ? log::iso8601_utc(*s.last_loss) + " (" + s.last_loss_reason + ")" : "none") + "\n";
    for (const auto& f : s.forwards) {
        out += std::string("  ") + (f.up ? "up    " : "down  ") + f.forward;
        if (f.up && f.port != 0) out += " (port " + std::to_string(f.port) + ")";
        out += "\n";
    }
    return out;
}

std::string render_json(const Status& s) {
    std::string out = "{\"pid\":" + std::to_string(s.pid) + ",\"instance\":" + json_quote(s.instance) +
                      ",\"server\":" + json_quote(s.server) + ",\"state\":" + json_quote(s.state) +
                      ",\"since\":" + json_quote(log::iso8601_utc(s.since)) +
                      ",\"reconnects\":" + std::to_string(s.reconnects) + ",\"last_loss\":";
    if (s.last_loss)
        out += "{\"at\":" + json_quote(log::iso8601_utc(*s.last_loss)) + ",\"reason\":" + json_quote(s.last_loss_reason) + "}";
    else
        out += "null";
    out += ",\"forwards\":[";
    for (std::size_t i = 0; i < s.forwards.size(); ++i) {
        const auto& f = s.forwards[i];
        out += std::string(i ? "," : "") + "{\"forward\":" + json_quote(f.forward) + ",\"up\":" + (f.up ? "true" : "false") +
               ",\"port\":" + std::to_string(f.port) + "}";
    }
    return out + "]}";
}

std::string render_all(const std::vector<std::string>& replies, bool json) {
    std::string out = json ? "{\"instances\":[" : "";
    for (std::size_t i = 0; i < replies.size(); ++i) {
        if (json) out += (i ? "," : "") + replies[i];
        else out += (i ? "\n" : "") + replies[i];
    }
    return json ? out + "]}\n" : out;
}

}  // namespace tn::forward
