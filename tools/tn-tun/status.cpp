// Rendering the server's state for `tn-tun status`: JSON for scripts, aligned text for people.
#include <sstream>

#include "base/strings.hpp"
#include "runner.hpp"

namespace tn::tuntool {
namespace {

std::string when(const std::optional<std::chrono::system_clock::time_point>& t) {
    return t ? log::iso8601_utc(*t) : std::string();
}

}  // namespace

std::string render_status(const tun::ServerCore& core, const ServerOptions& o, bool json) {
    std::ostringstream os;
    const auto& st = core.stats();
    auto server_addr = tun::ipv4_str(core.server_address()) + "/" + std::to_string(o.core.subnet.prefix);
    auto server_addr6 = o.core.subnet6 ? tun::ipv6_str(*core.server_address6()) + "/" + std::to_string(o.core.subnet6->prefix) : "";
    if (json) {
        os << "{\"interface\":" << json_quote(o.tun) << ",\"listen\":" << json_quote(o.listen)
           << ",\"address\":" << json_quote(server_addr)
           << ",\"address6\":" << (server_addr6.empty() ? "null" : json_quote(server_addr6)) << ",\"public_key\":" << json_quote(tun::key_to_base64(o.core.key.pub))
           << ",\"peers\":[";
        bool first = true;
        for (auto& p : core.peers()) {
            os << (first ? "" : ",") << "{\"name\":" << json_quote(p->config.name)
               << ",\"public_key\":" << json_quote(tun::key_to_base64(p->config.public_key)) << ",\"address\":"
               << (p->address ? json_quote(tun::ipv4_str(p->address)) : "null") << ",\"address6\":"
               << (p->address && o.core.subnet6 ? json_quote(tun::ipv6_str(p->address6)) : "null")
               << ",\"endpoint\":" << (p->endpoint ? json_quote(p->endpoint->str()) : "null")
               << ",\"last_handshake\":" << (p->last_handshake ? json_quote(when(p->last_handshake)) : "null")
               << ",\"connected\":" << (p->current ? "true" : "false")
               << ",\"cipher\":" << (p->current ? json_quote(tun::suite_name(p->current->suite)) : "null")
               << ",\"rx_packets\":" << p->stats.rx_packets
               << ",\"rx_bytes\":" << p->stats.rx_bytes << ",\"tx_packets\":" << p->stats.tx_packets
               << ",\"tx_bytes\":" << p->stats.tx_bytes << ",\"keepalives_rx\":" << p->stats.keepalives_rx
               << ",\"handshakes\":" << p->stats.handshakes << "}";
            first = false;
        }
        os << "],\"rejected_handshakes\":" << st.rejected_handshakes << ",\"rejections\":[";
        first = true;
        for (auto& r : core.recent_rejections()) {
            os << (first ? "" : ",") << "{\"source\":" << json_quote(r.source.str())
               << ",\"time\":" << json_quote(log::iso8601_utc(r.when)) << ",\"reason\":" << json_quote(r.reason) << "}";
            first = false;
        }
        os << "],\"dropped\":{\"malformed\":" << st.dropped_malformed << ",\"unknown_index\":" << st.dropped_unknown_index
           << ",\"replay\":" << st.dropped_replay << ",\"auth\":" << st.dropped_auth << ",\"expired\":" << st.dropped_expired
           << ",\"no_route\":" << st.dropped_no_route << ",\"spoofed\":" << st.dropped_spoofed << "}}\n";
        return os.str();
    }
    os << "interface " << o.tun << "  listen " << o.listen << "  address " << server_addr
       << (server_addr6.empty() ? "" : "  address6 " + server_addr6) << "\n";
    for (auto& p : core.peers()) {
        os << "peer " << p->config.name << "  " << tun::key_to_base64(p->config.public_key) << "\n"
           << "  address " << (p->address ? tun::ipv4_str(p->address) : "(none yet)")
           << (p->address && o.core.subnet6 ? "  address6 " + tun::ipv6_str(p->address6) : "") << "  endpoint "
           << (p->endpoint ? p->endpoint->str() : "(none)") << "  last handshake "
           << (p->last_handshake ? when(p->last_handshake) : "never")
           << (p->current ? std::string("  cipher ") + tun::suite_name(p->current->suite) : "") << "\n"
           << "  rx " << p->stats.rx_packets << " packets " << p->stats.rx_bytes << " bytes  tx " << p->stats.tx_packets
           << " packets " << p->stats.tx_bytes << " bytes\n";
    }
    os << "rejected handshakes " << st.rejected_handshakes << "\n";
    for (auto& r : core.recent_rejections())
        os << "  " << log::iso8601_utc(r.when) << "  " << r.source.str() << "  " << r.reason << "\n";
    os << "dropped malformed " << st.dropped_malformed << "  replay " << st.dropped_replay << "  auth "
       << st.dropped_auth << "  unknown_index " << st.dropped_unknown_index << "  no_route " << st.dropped_no_route
       << "  spoofed " << st.dropped_spoofed << "\n";
    return os.str();
}

std::string render_client_status(const ClientStatus& s, bool json) {
    std::ostringstream os;
    std::string address = s.applied ? tun::ipv4_str(s.applied->address) + "/" + std::to_string(s.applied->prefix) : "";
    std::string address6 = s.applied && s.applied->has_v6()
                               ? tun::ipv6_str(s.applied->address6) + "/" + std::to_string(s.applied->prefix6) : "";
    const auto& st = s.stats;
    if (json) {
        os << "{\"role\":\"client\",\"interface\":" << json_quote(s.tun) << ",\"server\":" << json_quote(s.server)
           << ",\"endpoint\":" << json_quote(s.endpoint) << ",\"connected\":" << (s.connected ? "true" : "false")
           << ",\"address\":" << (s.applied ? json_quote(address) : "null")
           << ",\"address6\":" << (address6.empty() ? "null" : json_quote(address6)) << ",\"mtu\":" << (s.applied ? std::to_string(s.applied->mtu) : "null")
           << ",\"last_handshake\":" << (s.last_handshake ? json_quote(when(s.last_handshake)) : "null")
           << ",\"cipher\":" << (s.suite ? json_quote(tun::suite_name(*s.suite)) : "null")
           << ",\"rx_packets\":" << st.rx_packets << ",\"rx_bytes\":" << st.rx_bytes << ",\"tx_packets\":" << st.tx_packets
           << ",\"tx_bytes\":" << st.tx_bytes << ",\"handshakes\":" << st.handshakes_done
           << ",\"cookies\":" << st.cookies << ",\"dropped\":" << st.dropped << ",\"routes\":[";
        for (std::size_t i = 0; i < s.routes.size(); ++i) os << (i ? "," : "") << json_quote(s.routes[i]);
        os << "]}\n";
        return os.str();
    }
    os << "interface " << s.tun << "  server " << s.server << " (" << s.endpoint << ")  "
       << (s.connected ? "connected" : "not connected") << "\n"
       << "  address " << (s.applied ? address : "(none yet)") << (address6.empty() ? "" : "  address6 " + address6)
       << "  last handshake "
       << (s.last_handshake ? when(s.last_handshake) : "never")
       << (s.suite ? std::string("  cipher ") + tun::suite_name(*s.suite) : "") << "\n"
       << "  rx " << st.rx_packets << " packets " << st.rx_bytes << " bytes  tx " << st.tx_packets << " packets "
       << st.tx_bytes << " bytes  handshakes " << st.handshakes_done << "\n";
    for (auto& r : s.routes) os << "  route " << r << "\n";
    return os.str();
}

bool LogLimiter::allow(tun::TimePoint now, std::uint64_t& suppressed) {
    if (now - start_ >= window_) {
        start_ = now;
        used_ = 0;
    }
    if (used_ >= burst_) {
        ++dropped_;
        return false;
    }
    ++used_;
    suppressed = dropped_;
    dropped_ = 0;
    return true;
}

}  // namespace tn::tuntool
