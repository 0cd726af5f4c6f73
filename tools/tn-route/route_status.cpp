// tn-route's status report (text and JSON) and the Unix control socket that serves it.
#include <charconv>
#include <climits>
#include <cstdint>
#include <iterator>
#include <sstream>

#include "base/exit_code.hpp"
#include "base/strings.hpp"
#include "route_session.hpp"

namespace tn::route {

using namespace relay;

namespace {
// A decimal count from the control socket (the CLI checked it already; this is the socket's own guard).
bool parse_count(const std::string& s, std::uint64_t& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}
}  // namespace

namespace {
// One traffic object (status --json, /api/status): the same five numbers for a vnet and a serve.
void traffic_json(std::ostream& o, const Traffic& t) {
    o << "{\"bytes_in\":" << t.bytes_in << ",\"bytes_out\":" << t.bytes_out << ",\"links\":" << t.links << ",\"open\":" << t.open
      << ",\"errors\":" << t.errors << "}";
}

void traffic_text(std::ostream& o, const Traffic& t) {
    o << "  in " << t.bytes_in << "  out " << t.bytes_out << "  links " << t.links << " (" << t.open << " open)  errors " << t.errors;
}

const Traffic& find_traffic(const std::map<TrafficBook::Key, TrafficBook::Vnet>& book, const std::string& group,
                            const std::string& vnet, std::optional<std::uint16_t> serve) {
    static const Traffic none{};
    auto v = book.find({group, vnet});
    if (v == book.end()) return none;
    if (!serve) return v->second.total;
    auto s = v->second.serves.find(*serve);
    return s == v->second.serves.end() ? none : s->second;
}
}  // namespace

std::map<TrafficBook::Key, TrafficBook::Vnet> RouteServer::traffic_now() const {
    auto book = traffic_.all();
    for (const auto& [id, a] : active_) TrafficBook::live(book, a.tag, a.in(), a.out());
    for (const auto& [id, a] : udp_active_)
        if (auto l = a.link.lock()) TrafficBook::live(book, a.tag, l->sent(), l->received());
    // Every registered serve has its series from the start (zeros until its first link).
    for (const auto& g : reg_.groups())
        for (const auto& r : reg_.serves(g)) book[{g, r.vnet_name}].serves[r.spec.id];
    return book;
}

void RouteServer::vnet_json(std::ostream& o, const Session& ss, const std::map<TrafficBook::Key, TrafficBook::Vnet>& book,
                            Clock::time_point now) const {
    o << "{\"id\":" << ss.vnet_id << ",\"name\":" << json_quote_text(ss.name) << ",\"group\":" << json_quote_text(ss.group)
      << ",\"peer\":" << json_quote(ss.peer) << ",\"uptime_s\":" << secs(now - ss.since)
      << ",\"pooled_links\":" << links_.pool_size(ss.vnet_id) << ",\"standby_links\":" << links_.standby_size(ss.vnet_id)
      << ",\"traffic\":";
    traffic_json(o, find_traffic(book, ss.group, ss.name, std::nullopt));
    o << ",\"serves\":[";
    bool f2 = true;
    for (const auto* rp : reg_.serves_of(ss.vnet_id)) {
        const auto& r = *rp;
        o << (f2 ? "" : ",") << "{\"id\":" << r.spec.id << ",\"name\":" << json_quote_text(r.spec.name)
          << ",\"type\":" << json_quote_text(r.spec.type) << ",\"ip\":" << json_quote_text(r.spec.ip) << ",\"port\":" << r.spec.port
          << ",\"info\":" << json_quote_text(r.spec.info) << ",\"remote_port\":" << r.spec.remote_port
          << ",\"unserve\":" << (r.spec.unserve ? "true" : "false") << ",\"custom_domains\":[";
        for (std::size_t i = 0; i < r.spec.domains.size(); ++i) o << (i ? "," : "") << json_quote_text(r.spec.domains[i]);
        o << "],\"traffic\":";
        traffic_json(o, find_traffic(book, ss.group, ss.name, r.spec.id));
        o << "}";
        f2 = false;
    }
    o << "]}";
}

void RouteServer::status_json(std::ostream& o, std::uint32_t after, std::size_t limit) const {
    auto now = Clock::now();
    std::uint64_t live = 0;
    for (const auto& [id, a] : active_) live += a.bytes();
    auto book = traffic_now();
    // Names come from peers: json_quote_text keeps the document valid whatever bytes they hold.
    o << "{\"listen\":" << json_quote(cfg_.listen.str()) << ",\"tls\":" << (cfg_.tls ? "true" : "false")
      << ",\"fingerprint\":" << json_quote(fingerprint_) << ",\"http\":" << (http_at_ ? json_quote(http_at_->str()) : "null")
      << ",\"https\":" << (tls_at_ ? json_quote(tls_at_->str()) : "null")
      << ",\"dashboard\":" << (dash_at_ ? json_quote(dash_at_->str()) : "null") << ",\"uptime_s\":" << secs(now - started_) << ",\"vnets\":[";
    std::size_t n = 0;
    auto page = limit ? sessions_.upper_bound(after) : sessions_.begin();
    for (; page != sessions_.end() && (!limit || n < limit); ++page, ++n) {
        o << (n ? "," : "");
        vnet_json(o, *page->second, book, now);
    }
    o << "]";
    if (limit) {
        o << ",\"vnet_count\":" << sessions_.size() << ",\"next_after\":";
        if (page == sessions_.end()) o << "null";
        else o << std::prev(page)->first;
    }
    bool first = true;
    // Every reason always present (0 until it happens), so scripts need no existence checks.
    o << ",\"tls_vhost\":{\"links\":" << tls_links_ << ",\"refused\":{";
    first = true;
    for (const char* r : kTlsRefusals) {
        auto it = tls_errors_.find(r);
        o << (first ? "" : ",") << json_quote(r) << ":" << (it == tls_errors_.end() ? 0 : it->second);
        first = false;
    }
    const auto& gate = setups_->gate;
    o << "}},\"setups\":{\"open\":" << gate.size() << ",\"at_work\":" << gate.at_work() << ",\"window\":" << gate.caps().window
      << ",\"accept_paused\":" << (main_loop_ && main_loop_->paused() ? "true" : "false") << ",\"refused\":" << setups_->refused
      << ",\"evicted\":" << setups_->evicted;
    o << "},\"links\":{\"active\":" << active_.size() << ",\"pending\":" << links_.pending_count() << ",\"total\":" << links_total_
      << ",\"reused\":" << links_reused_ << ",\"vhost\":" << vhost_links_ << "},\"bytes\":" << (bytes_total_ + live) << ",\"remote_ports\":[";
    first = true;
    for (const auto& [port, r] : remotes_) {
        o << (first ? "" : ",") << port;
        first = false;
    }
    o << "],\"udp_remote_ports\":";
    udp_status_json(o);
    o << "}\n";
}

std::string RouteServer::status_page(std::uint32_t after, std::size_t limit) const {
    std::ostringstream o;
    status_json(o, after, std::max<std::size_t>(1, limit));
    return o.str();
}

std::string RouteServer::status(bool json) const {
    std::ostringstream o;
    if (json) {
        status_json(o);
        return o.str();
    }
    auto now = Clock::now();
    std::uint64_t live = 0;
    for (const auto& [id, a] : active_) live += a.bytes();
    auto book = traffic_now();
    o << "listen " << cfg_.listen.str() << (cfg_.tls ? " tls " + fingerprint_ : " plain") << "  uptime "
      << secs(now - started_) << "s\n";
    if (http_at_) o << "http vhosts " << http_at_->str() << "\n";
    if (tls_at_) {
        std::uint64_t refused = 0;
        for (const auto& [r, n] : tls_errors_) refused += n;
        o << "https vhosts " << tls_at_->str() << " (by SNI)  links " << tls_links_ << "  refused " << refused << "\n";
    }
    if (dash_at_) o << "dashboard http://" << dash_at_->str() << "/\n";
    o << "links active " << active_.size() << "  pending " << links_.pending_count() << "  total " << links_total_ << "  reused " << links_reused_
      << "  bytes " << bytes_total_ + live << "\n";
    o << sessions_.size() << " vnets\n";
    // Peers' names go to a terminal: control characters and bad UTF-8 become visible escapes.
    for (const auto& [id, ss] : sessions_) {
        o << "vnet " << id << "  " << escape_controls(ss->name) << "  group " << escape_controls(ss->group) << "  from " << ss->peer
          << "  up " << secs(now - ss->since) << "s\n   ";
        traffic_text(o, find_traffic(book, ss->group, ss->name, std::nullopt));
        o << "\n";
        for (const auto* rp : reg_.serves_of(id)) {
            const auto& r = *rp;
            o << "  serve " << r.spec.id << "  " << escape_controls(r.spec.name) << "  " << escape_controls(r.spec.type) << " "
              << escape_controls(r.spec.ip) << ":" << r.spec.port;
            if (r.spec.remote_port) o << "  remote_port " << r.spec.remote_port;
            if (auto u = udp_remotes_.find(r.spec.remote_port); r.spec.type == "udp" && u != udp_remotes_.end()) {
                const auto& t = u->second.use->table();
                o << "  flows " << t.open() << "/" << t.max_flows() << "  dropped " << t.dropped();
            }
            for (const auto& d : r.spec.domains) o << "  " << escape_controls(d);
            if (!r.spec.info.empty()) o << "  (" << escape_controls(r.spec.info) << ")";
            o << "\n     ";
            traffic_text(o, find_traffic(book, ss->group, ss->name, r.spec.id));
            o << "\n";
        }
    }
    return o.str();
}

void RouteServer::on_control(local_socket sock) {
    if (stopped_) return;
    if (!peer_is_owner(sock)) {
        // The socket is 0600 in a 0700 directory; this is the last line if someone loosened either.
        log_.warn("control connection from another user refused");
        return;
    }
    serve_control(std::make_shared<local_socket>(std::move(sock)), [this](std::vector<std::string> w, auto reply) {
        if (w.size() == 1 && w[0] == "status") return reply(ControlReply{0, status(false)});
        if (w.size() == 2 && w[0] == "status" && w[1] == "json") return reply(ControlReply{0, status(true)});
        // status json LIMIT AFTER (status --json --limit N --after ID): one page of vnets.
        std::uint64_t limit = 0, after = 0;
        if (w.size() == 4 && w[0] == "status" && w[1] == "json" && parse_count(w[2], limit) && parse_count(w[3], after) && limit > 0 &&
            after <= UINT32_MAX)
            return reply(ControlReply{0, status_page(static_cast<std::uint32_t>(after), static_cast<std::size_t>(limit))});
        reply(ControlReply{to_int(ExitCode::usage), "error: unknown request\n"});
    });
}

}  // namespace tn::route
