// tn-route's [dashboard] pages: the HTML page and /metrics (Prometheus text). /api/status is
// status --json (route_status.cpp). Every name a peer or a config chose is escaped for where it goes.
#include <sstream>

#include "base/strings.hpp"
#include "http_head.hpp"
#include "route_session.hpp"

namespace tn::route {

using namespace relay;

namespace {
// A Prometheus label value: any UTF-8, with backslash, double quote and newline escaped. Other
// controls and bytes that are not UTF-8 become visible escapes first (a scraper rejects bad UTF-8).
std::string label(std::string_view v) {
    std::string o;
    for (char c : escape_controls(v, "\n")) {
        if (c == '\\' || c == '"') o += '\\';
        if (c == '\n') {
            o += "\\n";
            continue;
        }
        o += c;
    }
    return o;
}

// A name on the page: markup escaped, and controls visible (as in status).
std::string text(std::string_view v) { return http::html_escape(escape_controls(v)); }

// The five traffic cells of a vnet or serve row, each tagged with its key (scripts and tests read them).
void traffic_cells(std::ostream& o, const Traffic& t) {
    o << "<td data-k=\"bytes_in\">" << t.bytes_in << "</td><td data-k=\"bytes_out\">" << t.bytes_out << "</td><td data-k=\"links\">"
      << t.links << "</td><td data-k=\"open\">" << t.open << "</td><td data-k=\"errors\">" << t.errors << "</td>";
}

const Traffic* lookup(const std::map<TrafficBook::Key, TrafficBook::Vnet>& book, const std::string& g, const std::string& v,
                      std::optional<std::uint16_t> serve) {
    auto it = book.find({g, v});
    if (it == book.end()) return nullptr;
    if (!serve) return &it->second.total;
    auto s = it->second.serves.find(*serve);
    return s == it->second.serves.end() ? nullptr : &s->second;
}

void traffic_metrics(std::ostream& o, const std::map<TrafficBook::Key, TrafficBook::Vnet>& book) {
    struct Kind {
        const char* name;
        const char* type;
        const char* help;
        std::uint64_t Traffic::*field;
    };
    static const Kind kinds[] = {
        {"bytes_in_total", "counter", "bytes its users sent to it (payload, both ends' user bytes)", &Traffic::bytes_in},
        {"bytes_out_total", "counter", "bytes it sent back to its users (payload)", &Traffic::bytes_out},
        {"links_total", "counter", "links (proxied connections) bound since the route started", &Traffic::links},
        {"links_open", "gauge", "links relayed now", &Traffic::open},
        {"link_errors_total", "counter", "links that failed to set up or ended in an error", &Traffic::errors},
    };
    for (const auto& k : kinds) {
        o << "# HELP tn_route_vnet_" << k.name << " Per vnet: " << k.help << " (vnets that left: kept, up to 256).\n"
          << "# TYPE tn_route_vnet_" << k.name << " " << k.type << "\n";
        for (const auto& [key, v] : book)
            o << "tn_route_vnet_" << k.name << "{group=\"" << label(key.first) << "\",vnet=\"" << label(key.second) << "\"} "
              << v.total.*k.field << "\n";
        o << "# HELP tn_route_serve_" << k.name << " Per serve: " << k.help << ".\n# TYPE tn_route_serve_" << k.name << " " << k.type << "\n";
        for (const auto& [key, v] : book)
            for (const auto& [id, t] : v.serves)
                o << "tn_route_serve_" << k.name << "{group=\"" << label(key.first) << "\",vnet=\"" << label(key.second) << "\",serve=\""
                  << id << "\"} " << t.*k.field << "\n";
    }
}
}  // namespace

std::string RouteServer::metrics() const {
    std::ostringstream o;
    auto now = Clock::now();
    auto metric = [&](const char* name, const char* type, const char* help) {
        o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
    };
    std::uint64_t live = 0;
    for (const auto& [id, a] : active_) live += a.bytes();
    metric("tn_route_uptime_seconds", "gauge", "Seconds since this tn-route started.");
    o << "tn_route_uptime_seconds " << secs(now - started_) << "\n";
    std::map<std::string, std::pair<std::size_t, std::size_t>> groups;  // group -> vnets, serves
    for (const auto& g : cfg_.groups) groups[g.name];
    for (const auto& [id, ss] : sessions_) ++groups[ss->group].first;
    for (auto& [g, n] : groups) n.second = reg_.serves(g).size();
    metric("tn_route_vnets", "gauge", "Connected vnets, by group.");
    for (const auto& [g, n] : groups) o << "tn_route_vnets{group=\"" << label(g) << "\"} " << n.first << "\n";
    metric("tn_route_serves", "gauge", "Registered serves, by group.");
    for (const auto& [g, n] : groups) o << "tn_route_serves{group=\"" << label(g) << "\"} " << n.second << "\n";
    metric("tn_route_links_active", "gauge", "Proxied connections relayed now.");
    o << "tn_route_links_active " << active_.size() << "\n";
    metric("tn_route_links_pending", "gauge", "Links waiting for the serving vnet.");
    o << "tn_route_links_pending " << links_.pending_count() << "\n";
    metric("tn_route_links_total", "counter", "Proxied connections bound since start.");
    o << "tn_route_links_total " << links_total_ << "\n";
    metric("tn_route_relayed_bytes_total", "counter", "Bytes relayed, both directions, since start (links between two vnets: records as they travel).");
    o << "tn_route_relayed_bytes_total " << bytes_total_ + live << "\n";
    metric("tn_route_remote_ports", "gauge", "remote_port listeners open.");
    o << "tn_route_remote_ports " << remotes_.size() << "\n";
    udp_metrics(o);
    metric("tn_route_vhost_links_total", "counter", "HTTP vhost connections relayed to a serve since start.");
    o << "tn_route_vhost_links_total " << vhost_links_ << "\n";
    metric("tn_route_vhost_errors_total", "counter", "HTTP vhost requests the route answered itself, by status.");
    for (int code : {400, 404, 408, 431, 502, 503, 504}) {
        auto it = http_errors_.find(code);
        o << "tn_route_vhost_errors_total{code=\"" << code << "\"} " << (it == http_errors_.end() ? 0 : it->second) << "\n";
    }
    metric("tn_route_tls_vhost_links_total", "counter", "HTTPS vhost connections relayed unopened to a serve since start.");
    o << "tn_route_tls_vhost_links_total " << tls_links_ << "\n";
    metric("tn_route_tls_vhost_refused_total", "counter", "HTTPS vhost clients refused with a TLS alert, by reason.");
    for (const char* r : kTlsRefusals) {
        auto it = tls_errors_.find(r);
        o << "tn_route_tls_vhost_refused_total{reason=\"" << r << "\"} " << (it == tls_errors_.end() ? 0 : it->second) << "\n";
    }
    traffic_metrics(o, traffic_now());
    return o.str();
}

std::string RouteServer::dashboard_html() const {
    using http::html_escape;
    std::ostringstream o;
    auto now = Clock::now();
    std::uint64_t live = 0;
    for (const auto& [id, a] : active_) live += a.bytes();
    auto book = traffic_now();
    const char* th = "<th>bytes in</th><th>bytes out</th><th>links</th><th>open</th><th>errors</th>";
    o << "<!doctype html>\n<html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\">"
         "<title>tn-route " << html_escape(cfg_.listen.str()) << "</title><style>"
         "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}"
         "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#eee}td[data-k]{text-align:right}</style></head><body>\n"
      << "<h1>tn-route</h1>\n<p>listen " << html_escape(cfg_.listen.str()) << " &middot; "
      << (cfg_.tls ? "TLS " + html_escape(fingerprint_) : std::string("plain TCP")) << " &middot; up " << secs(now - started_)
      << " s</p>\n<table id=\"links\"><tr><th>links active</th><th>pending</th><th>total</th><th>bytes relayed</th><th>vhost links</th></tr><tr><td>"
      << active_.size() << "</td><td>" << links_.pending_count() << "</td><td>" << links_total_ << "</td><td>" << bytes_total_ + live
      << "</td><td>" << vhost_links_ << "</td></tr></table>\n";
    o << "<h2>HTTPS vhosts (by SNI)</h2>\n<table id=\"tls_vhost\"><tr><th>links</th>";
    for (const char* r : kTlsRefusals) o << "<th>refused: " << r << "</th>";
    o << "</tr><tr><td data-k=\"links\">" << tls_links_ << "</td>";
    for (const char* r : kTlsRefusals) {
        auto it = tls_errors_.find(r);
        o << "<td data-k=\"" << r << "\">" << (it == tls_errors_.end() ? 0 : it->second) << "</td>";
    }
    o << "</tr></table>\n<h2>vnets (" << sessions_.size() << ")</h2>\n<table id=\"vnets\"><tr><th>id</th><th>name</th><th>group</th>"
      << "<th>from</th><th>up (s)</th>" << th << "</tr>\n";
    static const Traffic none{};
    for (const auto& [id, ss] : sessions_) {
        o << "<tr data-vnet=\"" << id << "\"><td>" << id << "</td><td>" << text(ss->name) << "</td><td>" << text(ss->group) << "</td><td>"
          << html_escape(ss->peer) << "</td><td>" << secs(now - ss->since) << "</td>";
        const Traffic* t = lookup(book, ss->group, ss->name, std::nullopt);
        traffic_cells(o, t ? *t : none);
        o << "</tr>\n";
    }
    o << "</table>\n<h2>serves</h2>\n<table id=\"serves\"><tr><th>group</th><th>id</th><th>name</th><th>vnet</th><th>target</th>"
         "<th>remote_port</th><th>custom domains</th><th>info</th>" << th << "</tr>\n";
    for (const auto& g : reg_.groups())
        for (const auto& r : reg_.serves(g)) {
            std::string domains;
            for (const auto& d : r.spec.domains) domains += (domains.empty() ? "" : " ") + d;
            o << "<tr data-serve=\"" << r.vnet_id << "/" << r.spec.id << "\"><td>" << text(g) << "</td><td>" << r.spec.id << "</td><td>"
              << text(r.spec.name) << "</td><td>" << r.vnet_id << " " << text(r.vnet_name) << "</td><td>" << text(r.spec.ip) << ":"
              << r.spec.port << "</td><td>" << (r.spec.remote_port ? std::to_string(r.spec.remote_port) : "") << "</td><td>"
              << text(domains) << "</td><td>" << text(r.spec.info) << "</td>";
            const Traffic* t = lookup(book, g, r.vnet_name, r.spec.id);
            traffic_cells(o, t ? *t : none);
            o << "</tr>\n";
        }
    o << "</table>\n<p><a href=\"/api/status\">/api/status</a> &middot; <a href=\"/metrics\">/metrics</a></p>\n</body></html>\n";
    return o.str();
}

}  // namespace tn::route
