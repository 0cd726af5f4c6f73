// tn-route's HTTPS vhosts ([http] listen_tls, frp's vhostHTTPSPort): the route reads a client's TLS
// ClientHello without opening it, picks the serve whose custom_domains match its server name (SNI),
// and relays the connection unopened, the hello's bytes first: the certificate and the keys stay on
// the private host. A client that sends no usable hello gets a fatal TLS alert and is counted.
#include "relay/sni.hpp"
#include "route_session.hpp"

namespace tn::route {

using namespace relay;

namespace {
// As the HTTP listener: a client gets this long to send its ClientHello (slowloris guard).
constexpr auto kHelloTimeout = std::chrono::seconds(5);
}  // namespace

// One TLS client's hello as it arrives.
struct HelloState {
    explicit HelloState(asio::io_context& io) : timer(io) {}
    steady_timer timer;
    Bytes buf;
    bool timed_out = false;
};

void RouteServer::accept_tls(tcp::socket sock) {
    if (stopped_) return;
    error_code e2;
    auto ep = sock.remote_endpoint(e2);
    if (e2) return;
    sock.set_option(tcp::no_delay(true), e2);
    auto s = std::make_shared<Stream>(std::move(sock));
    auto lg = peer_log(ep);
    auto source = source_key(ep.address());
    // Its own gate (as vhosts and the dashboard have theirs): a flood of silent TLS clients takes
    // slots from no other listener, and one address takes only its share of this one.
    auto slot = admit_client(tls_heads_, s, source, lg, "TLS clients are already sending their hellos");
    if (!slot) return;
    auto st = std::make_shared<HelloState>(io_);
    arm_first_bytes_deadline(st, s, kHelloTimeout);
    read_hello(s, lg, st, slot);
}

// Reads on until the hello decides. Only the pending read holds the state (no cycle at shutdown).
void RouteServer::read_hello(StreamPtr s, log::Context lg, std::shared_ptr<HelloState> st, SetupPtr slot) {
    auto at = st->buf.size();
    auto room = std::min<std::size_t>(4096, kMaxHelloBytes - at);
    st->buf.resize(at + room);
    s->async_read_some(asio::buffer(st->buf.data() + at, room), [this, s, lg, st, slot, at](error_code ec, std::size_t n) {
        st->buf.resize(at + n);
        if (stopped_) {
            st->timer.cancel();
            return;
        }
        if (ec) {
            st->timer.cancel();
            if (st->timed_out) return tls_refuse(s, lg, TlsAlert::handshake_failure, "timeout", "no whole ClientHello in time");
            // Evicted by the gate (its slot went to a newcomer) or connected and left: nothing to count.
            if (!s->socket().is_open() || st->buf.empty()) return s->close();
            return tls_refuse(s, lg, TlsAlert::decode_error, "cut", "the ClientHello ended after " + std::to_string(st->buf.size()) + " bytes");
        }
        if (at == 0) {
            if (auto t = slot->table.lock()) t->gate.progressed(slot->id);
        }
        auto r = parse_client_hello(st->buf);
        if (r.state == SniState::need_more) return read_hello(s, lg, st, slot);
        st->timer.cancel();
        if (r.state == SniState::bad) return tls_refuse(s, lg, TlsAlert::decode_error, "bad_hello", r.why);
        if (r.state == SniState::no_sni) return tls_refuse(s, lg, TlsAlert::unrecognized_name, "no_sni", r.why);
        const ServeRecord* rec = reg_.find_by_host(r.host);
        if (!rec) return tls_refuse(s, lg, TlsAlert::unrecognized_name, "unknown_name", "no serve has the custom domain '" + r.host + "'");
        lg.debug("TLS client for '", r.host, "' -> serve ", rec->spec.id, " (", rec->spec.name, ")");
        // The hello goes to the serve first, as it came; then the rest of the connection, unopened.
        request_link(s, rec->group, rec->spec.id, UserKind::tls, lg, std::move(st->buf));
    });
}

void RouteServer::tls_refuse(const StreamPtr& s, const log::Context& lg, TlsAlert alert, const std::string& reason, const std::string& why) {
    ++tls_errors_[reason];
    if (auto held = tls_log_.allow(Clock::now()))
        lg.info("TLS client refused (", reason, "): ", why, *held ? " (" + std::to_string(*held) + " more not logged)" : "");
    auto a = alert_record(alert);
    // The lingering close of HTTP answers: the alert is not lost to a reset over unread bytes.
    http_reply(s, std::string(a.begin(), a.end()), 0, false);
}

}  // namespace tn::route
