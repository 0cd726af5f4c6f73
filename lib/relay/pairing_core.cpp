// The texts of LinkPairing's verdicts (the strings the route logs and sends).
#include "relay/pairing_core.hpp"

namespace tn::relay {

std::string_view describe(PendingEnd why) {
    switch (why) {
    case PendingEnd::serve_failed: return "the serving vnet could not connect";
    case PendingEnd::link_closed: return "the serving vnet's link closed";
    case PendingEnd::protocol: return "protocol error on the serving vnet's link";
    case PendingEnd::timeout: return "the serving vnet did not answer in time";
    case PendingEnd::serve_gone: return "the serving vnet went away";
    case PendingEnd::shutdown: return "the route is stopping";
    }
    return "ended";
}

int http_status(PendingEnd why) { return why == PendingEnd::timeout ? 504 : 502; }

std::string describe(Refusal why, std::string_view group, std::uint16_t id, std::string_view source) {
    switch (why) {
    case Refusal::none: return {};
    case Refusal::route_full: return "too many pending links on this route";
    case Refusal::group_full: return "too many pending links for group '" + std::string(group) + "'";
    case Refusal::serve_full: return "too many pending links for serve " + std::to_string(id);
    case Refusal::public_full: return "too many public clients waiting on this route";
    case Refusal::source_full: return "too many waiting clients from " + std::string(source);
    }
    return "refused";
}

}  // namespace tn::relay
