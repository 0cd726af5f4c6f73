// tn-vnet's serves, uses and links: registering serves, use listeners that follow their id, one link
// per proxied connection on both sides, and unserve (a peer's request for an unregistered service).
#include "base/net_addr.hpp"
#include "relay/io_connect.hpp"
#include "relay/digest.hpp"
#include "relay/seal.hpp"
#include "relay/io_accept.hpp"
#include "vnet_agent.hpp"
#include "vnet_e2e.hpp"
#include "vnet_serve_join.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace tn::vnet {

using namespace relay;

namespace {
std::uint64_t now_ms() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count());
}
bool is_loopback(const std::string& ip) {
    relay::error_code ec;
    auto a = asio::ip::make_address(ip, ec);
    return ip == "localhost" || (!ec && a.is_loopback());
}

// The serving side of a link gets LINK_OK (or an ERROR that says why) from the route. LINK_OK's key box
// opens only with our ticket and this connection's challenge; a route that should seal (tls = true)
// but offers a plain link is refused, so nothing ever goes out in clear by a downgrade. A plain link
// (tls = false) carries the same records in clear. The cipher byte's e2e flag must match our own
// e2e_secret both ways: the handshake's bytes never reach a service as data, and a vnet with
// e2e_secret never serves a link without it. `e2e` comes back true when the flag is set.
using Verdict = std::function<void(bool ok, std::string why, std::unique_ptr<LinkSeal> seal, bool e2e)>;
void await_verdict(const StreamPtr& s, const Ticket& ticket, bool sealed, bool want_e2e, Side side, Verdict done) {
    auto verdict = [s, ticket, sealed, want_e2e, side, done](relay::error_code ec, Frame f, std::string why) {
        if (ec) return done(false, why, nullptr, false);
        try {
            if (f.type == MsgType::error) return done(false, from_frame<ErrorMsg>(f).message, nullptr, false);
            auto ok = from_frame<LinkOk>(f);
            if (is_e2e(ok.cipher) && !want_e2e)
                return done(false, "e2e refused: the using end runs end-to-end links (e2e_secret) and this vnet has no e2e_secret: set the same one on both", nullptr, false);
            if (!is_e2e(ok.cipher) && want_e2e)
                return done(false, "e2e refused: a link without the end-to-end handshake (the using vnet has no e2e_secret, "
                                   "or the route itself is the using end: remote_port, HTTP vhosts)", nullptr, false);
            auto base = base_cipher(ok.cipher);
            // An e2e link's handshake records carry a tag even when plain (§12).
            auto rec = want_e2e ? e2e_outer_cipher(ok.cipher) : base;
            if (!sealed) {
                if (base != Cipher::none) throw WireError("sealed LINK_OK on a plain link (tls = false here)");
                return done(true, {}, std::make_unique<LinkSeal>(rec, LinkKey{}, side), want_e2e);
            }
            if (base == Cipher::none) throw WireError("plain LINK_OK on a sealed link (tls = true here)");
            auto key = open_key_box(ticket, s->challenge, ok.link_id, ok.key_box, BoxWay::to_vnet, static_cast<Cipher>(ok.cipher));
            auto seal = std::make_unique<LinkSeal>(rec, key, side);
            relay::wipe(key);
            done(true, {}, std::move(seal), want_e2e);
        } catch (const WireError& e) {
            done(false, std::string("protocol error: ") + e.what(), nullptr, false);
        }
    };
    // On a standby link LINK_OK came in with the request: go on at once.
    Frame f;
    try {
        if (take_buffered_frame(*s, f)) return verdict({}, std::move(f), {});
    } catch (const WireError& e) {
        return verdict(asio::error::invalid_argument, {}, e.what());
    }
    async_read_frame(s, verdict);
}
}  // namespace

// A parked link holds nothing to read (its CHALLENGE was read): readable means closed or broken.
bool link_alive(Stream& s) {
    std::uint8_t b;
    return s.unread.empty() && ::recv(s.socket().native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

std::function<bool()> VnetAgent::keep_fn(bool standby) {
    return [this, standby, gen = pools_.generation()]() { return will_keep(standby, gen); };
}

LocalServe* VnetAgent::serve_by_name(const std::string& n) {
    for (auto& s : serves_)
        if (s.cfg.name == n) return &s;
    return nullptr;
}
LocalServe* VnetAgent::serve_by_id(std::uint16_t id) {
    for (auto& s : serves_)
        if (s.registered && s.id == id) return &s;
    return nullptr;
}
LocalUse* VnetAgent::use_by_name(const std::string& n) {
    for (auto& u : uses_)
        if (u.cfg.name == n) return &u;
    return nullptr;
}

void VnetAgent::register_serve(LocalServe& s) {
    if (!connected_) {
        s.set(ServeState::waiting);
        return;
    }
    auto req = next_req_++;
    serve_reqs_[req] = s.cfg.name;
    ServeSpec spec;
    spec.id = s.id ? s.id : s.cfg.id;  // keep an id the route gave us before, across reconnects
    if (s.cfg.id >= kStaticMin) spec.id = s.cfg.id;
    spec.name = s.cfg.name;
    spec.type = s.cfg.type;
    spec.ip = s.cfg.ip;
    spec.port = s.cfg.port;
    spec.info = s.cfg.info;
    spec.remote_port = s.cfg.remote_port;
    spec.unserve = s.unserve;
    spec.domains = s.cfg.custom_domains;
    s.set(ServeState::registering);
    send(to_frame(Serve{req, spec}));
}

void VnetAgent::unregister_serve(LocalServe& s) {
    if (s.registered) send(to_frame(ServeClose{s.id}));
    s.registered = false;
    s.set(ServeState::inactive);
}

void VnetAgent::attach(LocalUse& u) {
    auto it = available_.find(u.cfg.id);
    if (it == available_.end() || !connected_) {
        u.set(UseState::standby);
        return;
    }
    std::uint16_t port = u.cfg.port ? u.cfg.port : it->second.spec.port;
    // A TCP use of a UDP serve (or the other way) would carry bytes the other end reads as something
    // else: refused here, with what to change.
    auto serve_type = it->second.spec.type.empty() ? std::string("tcp") : it->second.spec.type;
    if (serve_type != u.cfg.type) {
        u.set(UseState::error, "serve " + std::to_string(u.cfg.id) + " (" + it->second.spec.name + ") is type " + serve_type +
                                   ", this use is type " + u.cfg.type + ": set type = \"" + serve_type + "\" on the use");
        use_log(u.cfg.name).error(u.state_text());
        return;
    }
    if (u.cfg.type == "udp") {
        if (!attach_udp(u, port)) return;
        use_log(u.cfg.name).info("attached: udp ", u.cfg.ip, ":", port, " -> serve ", u.cfg.id, " (", it->second.spec.name,
                                 " on vnet ", it->second.vnet_id, ")");
        return refill_pools();
    }
    auto acc = std::make_shared<tcp::acceptor>(io_);
    relay::error_code ec;
    auto addr = asio::ip::make_address(u.cfg.ip, ec);
    if (!ec) {
        tcp::endpoint ep(addr, port);
        acc->open(ep.protocol(), ec);
        if (!ec) acc->set_option(tcp::acceptor::reuse_address(true), ec);
        if (!ec) acc->bind(ep, ec);
        if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        u.set(UseState::error, "cannot listen on " + u.cfg.ip + ":" + std::to_string(port) + ": " + ec.message());
        use_log(u.cfg.name).error(u.state_text());
        return;
    }
    u.listener = acc;
    u.bound_port = port;
    u.set(UseState::attached);
    use_log(u.cfg.name).info("attached: ", u.cfg.ip, ":", port, " -> serve ", u.cfg.id, " (", it->second.spec.name, " on vnet ",
                             it->second.vnet_id, ")");
    accept_use(acc, u.cfg.name);
    refill_pools();
}

void VnetAgent::detach(LocalUse& u, UseState state) {
    if (u.listening()) {
        relay::error_code ec;
        if (u.listener) u.listener->close(ec);
        if (u.udp) u.udp->stop();
        u.listener.reset();
        u.udp.reset();
        use_log(u.cfg.name).info(describe(state, {}), ": serve ", u.cfg.id, " is not available");
    }
    u.set(state);
}

void VnetAgent::attach_uses() {
    for (auto& u : uses_)
        if (u.cfg.active && !u.listening()) attach(u);
}

void VnetAgent::accept_use(std::shared_ptr<tcp::acceptor> acc, std::string use_name) {
    // An accept error (a descriptor flood: EMFILE) must not end the use port for good: the relay's
    // AcceptLoop backs off and re-arms; only detach (closing the acceptor) ends it.
    relay::TcpAcceptLoop::start(
        acc,
        {[this, acc, use_name](tcp::socket sock) {
             auto* u = use_by_name(use_name);
             if (stopped_ || !u || u->listener != acc) {
                 relay::error_code ec;
                 return acc->close(ec);  // the use went away meanwhile: this listener is done
             }
             open_link(std::move(sock), u->cfg.id, use_name);
         },
         [this](const std::string& m) { log_.warn(m); }, nullptr},
        "use '" + use_name + "'");
}

void VnetAgent::open_link(tcp::socket local, std::uint16_t id, std::string use_name) {
    relay::error_code nec;
    local.set_option(tcp::no_delay(true), nec);  // each hop forwards what it has at once
    auto lp = std::make_shared<Stream>(std::move(local));
    while (auto taken = pools_.take_parked()) {
        auto s = *taken;
        // Our first records go out before the route answers, so a parked link that died unseen (a
        // restarted route) is found now, not after they were lost on it.
        if (!link_alive(*s)) {
            s->close();
            continue;
        }
        use_link(lp, s, id, use_name);
        return refill_pools();  // after the LINK_OPEN went out: the refill is not on this connection's path
    }
    open_link_conn([this, lp, id, use_name](relay::error_code ec, StreamPtr s, std::string why) {
        if (ec) {
            use_log(use_name).warn("link to the route failed: ", why);
            return lp->close();
        }
        use_link(lp, s, id, use_name);
    });
}

std::pair<Bytes, std::unique_ptr<LinkSeal>> VnetAgent::link_open_frame(const StreamPtr& s, std::uint16_t id) {
    // We draw the link key (tls = true) and box it for the route, which boxes it on for the serving
    // vnet: so our records can follow LINK_OPEN at once, without waiting for the route's answer.
    // With tls = false the records go in clear. With e2e_secret the cipher byte says so (§12) and the
    // records start with the handshake.
    bool e2e = cfg_.e2e_secret.has_value();
    auto cipher = link_cipher_byte(cfg_.tls, e2e);  // covered by the proof and the key box
    LinkOpen m{vnet_id_, id, link_proof(ticket_, MsgType::link_open, s->challenge, vnet_id_, id, cipher)};
    m.cipher = cipher;
    LinkKey key{};
    if (cfg_.tls) {
        key = random_link_key();
        m.key_box = seal_key_box(ticket_, s->challenge, id, key, BoxWay::to_route, static_cast<Cipher>(cipher));
    }
    auto seal = std::make_unique<LinkSeal>(e2e ? e2e_outer_cipher(cipher) : base_cipher(cipher), key, Side::use);
    relay::wipe(key);
    return {encode_frame(to_frame(m)), std::move(seal)};
}

void VnetAgent::use_link(StreamPtr lp, StreamPtr s, std::uint16_t id, std::string use_name) {
    if (cfg_.e2e_secret) return use_link_e2e(std::move(lp), std::move(s), id, std::move(use_name));
    auto [first, seal] = link_open_frame(s, id);
    // What the client sent already (most protocols speak first) goes out in the same write: one
    // segment, and one wake-up of the route, for both. Nothing there yet is the usual EAGAIN.
    std::array<std::uint8_t, 16384> early;
    ssize_t n = ::recv(lp->socket().native_handle(), early.data(), early.size(), MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        s->close();
        return lp->close();
    }
    if (n > 0) {
        auto at = first.size();
        auto len = static_cast<std::size_t>(n);
        first.resize(at + len + kRecordOverhead);
        first.resize(at + seal->tx.seal(std::span(early.data(), len), first.data() + at));
    }
    auto held = std::make_shared<std::unique_ptr<LinkSeal>>(std::move(seal));
    std::uint64_t pre = n > 0 ? static_cast<std::uint64_t>(n) : 0;
    auto sent = [this, lp, s, use_name, held, pre](relay::error_code ec) {
        if (ec || stopped_) {
            s->close();
            return lp->close();
        }
        ++links_total_;
        if (auto* u = use_by_name(use_name)) ++u->open_links;
        // The link -> local direction waits for LINK_OPENED (or the route's ERROR) first.
        auto ul = use_log(use_name);
        auto pump = Pump::start(lp, s, [this, use_name, ul, s, pre, gen = pools_.generation()](const LinkEnd& end, std::uint64_t ab, std::uint64_t ba) {
            bytes_total_ += pre + ab + ba;
            if (auto* u = use_by_name(use_name); u && u->open_links) --u->open_links;
            if (end.peer_fault()) ul.warn("link closed: ", end.text());
            if (end.clean() && s->socket().is_open()) reuse_link(s, false, gen);
        }, nullptr, std::move(*held), keep_fn(false), 1);
        pumps_.add(pump);
        async_read_frame(s, [s, pump, ul](relay::error_code ec2, Frame f, std::string why) {
            if (!s->socket().is_open()) return;  // the pump ended already (the local side went away)
            std::string err = why;
            if (!ec2) {
                try {
                    if (f.type != MsgType::error) {
                        from_frame<LinkOpened>(f);
                        return pump->resume(1);
                    }
                    err = from_frame<ErrorMsg>(f).message;
                } catch (const WireError& e) {
                    err = std::string("protocol error: ") + e.what();
                }
            }
            ul.warn("link refused: ", err);
            pump->abort("refused: " + err, true);
        });
    };
    // An idle link takes these few hundred bytes at once: then the pump starts without a trip
    // through the event loop.
    ssize_t w;
    do w = ::send(s->socket().native_handle(), first.data(), first.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    while (w < 0 && errno == EINTR);
    if (w == static_cast<ssize_t>(first.size())) return sent({});
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return sent(relay::error_code(errno, boost::system::system_category()));
    first.erase(first.begin(), first.begin() + (w > 0 ? w : 0));
    async_write_bytes(s, std::move(first), sent);
}

void VnetAgent::serve_link(std::uint64_t link_id, std::uint16_t id, bool early, StreamPtr via) {
    auto* sv = serve_by_id(id);
    if (!sv) {
        auto why = "serve " + std::to_string(id) + " is not registered here";
        if (via && early) return via->close();  // the route bound it already: its close is the refusal
        return fail_link(link_id, via, why);
    }
    // With `early` the local connect and the link's binding run in parallel (on a standby link the
    // route sends LINK_OK right behind the request: nothing to answer); the pump starts when both are
    // done, and a local service that refuses closes the link instead (the using side's connection
    // ends: reset, when sealed). Without it the connect comes first and a refusal is a LINK_FAIL.
    auto j = std::make_shared<ServeJoin>(link_id, id, early, via, serve_log(sv->cfg.name), io_);
    if (sv->cfg.type == "udp") j->dgram = std::make_shared<udp::socket>(io_);
    // With `early` the link is taken first: a local connect that is over inside connect_nearby
    // (loopback) then finds it, and a refusal closes it.
    if (early) serve_link_up(j);
    if (j->failed) return;  // refused already (LINK_OK came with the request): nothing to connect for
    if (j->dgram) return connect_serve_udp(j, sv->cfg.ip, sv->cfg.port);
    connect_serve_local(j, sv->cfg.ip, sv->cfg.port);
}

void VnetAgent::fail_link(std::uint64_t link_id, StreamPtr via, const std::string& why) {
    if (!via) return send(to_frame(LinkFail{link_id, why}));  // the route fails the request at once
    async_write_bytes(via, encode_frame(to_frame(LinkFail{link_id, why})), [via](relay::error_code) { via->close(); });
}

void VnetAgent::connect_serve_local(std::shared_ptr<ServeJoin> j, const std::string& ip, std::uint16_t port) {
    auto connected = [this, j](relay::error_code ec) { serve_link_connected(j, ec); };
    relay::error_code aec;
    auto addr = asio::ip::make_address(ip, aec);
    if (!aec) return connect_nearby(*j->local, tcp::endpoint(addr, port), connected);  // an IP literal: the usual case
    auto res = std::make_shared<tcp::resolver>(io_);
    res->async_resolve(ip, std::to_string(port), [res, j, connected](relay::error_code ec, tcp::resolver::results_type r) {
        if (ec) return connected(ec);
        asio::async_connect(*j->local, r, [j, connected](relay::error_code ec2, const tcp::endpoint& ep) {
            if (!ec2) {
                relay::error_code nec;
                j->local->set_option(tcp::no_delay(true), nec);
                relay::read_interest_only(*j->local, ep.protocol());
            }
            connected(ec2);
        });
    });
}

void VnetAgent::serve_link_connected(std::shared_ptr<ServeJoin> j, relay::error_code ec) {
    if (ec) {
        j->sl.warn("local service refused link ", j->link_id, ": ", ec.message());
        j->failed = true;
        if (j->link) return j->link->close();  // LINK_ACCEPT went out: the close is the refusal
        return fail_link(j->link_id, j->via, ec.message());
    }
    j->connected = true;
    if (!j->early) return serve_link_up(j);
    serve_link_start(j);
}

void VnetAgent::serve_link_up(std::shared_ptr<ServeJoin> j) {
    if (j->via) return serve_link_bind(j, j->via);
    open_link_conn([this, j](relay::error_code ec, StreamPtr s, std::string why) {
        if (ec) {
            j->failed = true;
            relay::error_code ec2;
            j->local->close(ec2);
            return send(to_frame(LinkFail{j->link_id, why}));
        }
        serve_link_bind(j, s);
    });
}

void VnetAgent::serve_link_bind(std::shared_ptr<ServeJoin> j, StreamPtr s) {
    j->link = s;
    if (j->failed) return s->close();
    if (!(j->via && j->early)) {
        auto fr = encode_frame(
            to_frame(LinkAccept{vnet_id_, j->link_id, link_proof(ticket_, MsgType::link_accept, s->challenge, vnet_id_, j->link_id)}));
        async_write_bytes(s, std::move(fr), [](relay::error_code) {});
    }
    await_verdict(s, ticket_, cfg_.tls, cfg_.e2e_secret.has_value(), Side::serve,
                  [this, j, s](bool ok, std::string why, std::unique_ptr<LinkSeal> seal, bool e2e) {
        if (ok && e2e && !j->failed) return serve_link_e2e(j, s, std::move(seal));
        serve_link_bound(j, s, ok, why, std::move(seal));
    });
}

void VnetAgent::serve_link_bound(std::shared_ptr<ServeJoin> j, StreamPtr s, bool ok, const std::string& why, std::unique_ptr<LinkSeal> seal) {
    if (!ok || j->failed) {
        if (!ok && !j->failed) {
            j->sl.warn("link refused: ", why);
            if (why.find("e2e") != std::string::npos) ++e2e_refused_;
        }
        j->failed = true;
        s->close();
        relay::error_code ec;
        if (j->dgram) j->dgram->close(ec);
        return j->local->close(ec);
    }
    j->seal = std::move(seal);
    j->bound = true;
    serve_link_start(j);
}

void VnetAgent::serve_link_start(std::shared_ptr<ServeJoin> j) {
    if (!j->connected || !j->bound) return;
    if (j->dgram) return start_udp_serve(j);
    auto lp = std::make_shared<Stream>(std::move(*j->local));
    ++links_total_;
    if (auto* sv = serve_by_id(j->id)) {
        ++sv->open_links;
        unserve_timers_.opened(j->id);
    }
    auto s = j->link;
    pumps_.add(Pump::start(s, lp, [this, id = j->id, sl = j->sl, s, gen = pools_.generation()](const LinkEnd& end, std::uint64_t ab, std::uint64_t ba) {
        bytes_total_ += ab + ba;
        if (auto* sv = serve_by_id(id); sv && sv->open_links) --sv->open_links;
        unserve_timers_.closed(id, now_ms());
        if (end.peer_fault()) sl.warn("link closed: ", end.text());
        if (end.clean() && s->socket().is_open()) reuse_link(s, true, gen);
    }, std::move(j->seal), nullptr, keep_fn(true)));
}

void VnetAgent::on_unserve_ask(const UnserveAsk& m) {
    auto no = [&](const std::string& why) {
        route_log_.info("unserve ", m.ip, ":", m.port, " from vnet ", m.from, " refused: ", why);
        send(to_frame(UnserveReply{m.req, false, 0, why}));
    };
    if (!cfg_.allow_unserve) return no("this vnet does not allow unserve (allow_unserve = false)");
    if (!is_loopback(m.ip) && !cfg_.unserve_remote)
        return no("only loopback targets may be unserved here (unserve_remote = false)");
    int count = 0;
    for (const auto& s : serves_) count += s.unserve ? 1 : 0;
    if (count >= cfg_.unserve_num) return no("unserve limit reached (unserve_num = " + std::to_string(cfg_.unserve_num) + ")");
    std::string name = "unserve-" + m.ip + ":" + std::to_string(m.port);
    if (auto* existing = serve_by_name(name); existing && existing->registered)
        return send(to_frame(UnserveReply{m.req, true, existing->id, "already served"}));
    LocalServe s;
    s.cfg.name = name;
    s.cfg.ip = m.ip;
    s.cfg.port = m.port;
    s.cfg.info = "unserve for vnet " + std::to_string(m.from);
    s.unserve = true;
    serves_.push_back(s);
    auto req = next_req_;
    register_serve(serves_.back());
    waiting_[req] = [this, r = m.req](const Frame& f) {
        auto res = from_frame<ServeResult>(f);
        send(to_frame(UnserveReply{r, res.ok, res.id, res.message}));
    };
    route_log_.info("unserve ", m.ip, ":", m.port, " for vnet ", m.from, ": registering");
}

void VnetAgent::expire_unserves() {
    for (auto id : unserve_timers_.expire(now_ms())) {
        for (auto it = serves_.begin(); it != serves_.end(); ++it) {
            if (it->unserve && it->id == id) {
                serve_log(it->cfg.name).info("unserve (id ", id, ") expired");
                unregister_serve(*it);
                serves_.erase(it);
                break;
            }
        }
    }
    unserve_timer_.expires_after(std::max<Clock::duration>(std::chrono::milliseconds(20), scaled(std::chrono::milliseconds(1000))));
    unserve_timer_.async_wait([this](relay::error_code ec) {
        if (!ec && !stopped_) expire_unserves();
    });
}

}  // namespace tn::vnet
