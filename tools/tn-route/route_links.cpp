// tn-route's control messages, link pairing, remote_port listeners and the heartbeat sweep.
#include <algorithm>
#include <sstream>

#include "http_head.hpp"
#include "relay/auth.hpp"
#include "relay/digest.hpp"
#include "relay/e2e.hpp"
#include "relay/seal.hpp"
#include "route_session.hpp"

namespace tn::route {

using namespace relay;


void RouteServer::session_frame(const SessionPtr& ss, Frame f) {
    try {
        switch (f.type) {
            case MsgType::ping: return answer_ping(ss, from_frame<Ping>(f));
            case MsgType::pong: from_frame<Pong>(f); return;
            case MsgType::serve: return add_serve(ss, from_frame<Serve>(f));
            case MsgType::serve_close: {
                auto m = from_frame<ServeClose>(f);
                if (auto r = reg_.remove_serve(ss->vnet_id, m.id)) {
                    ss->log.info("serve down id=", m.id, " name=", r->spec.name);
                    serve_gone(*r);
                }
                return;
            }
            case MsgType::vnets_req: {
                Vnets v{from_frame<VnetsReq>(f).req, {}};
                for (const auto& r : reg_.vnets(ss->group))
                    v.vnets.push_back({r.id, r.name, static_cast<std::uint16_t>(reg_.serve_count(r.id))});
                return ss->send(to_frame(v));
            }
            case MsgType::link_fail: {
                auto m = from_frame<LinkFail>(f);
                return fail_pending(m.link_id, PendingEnd::serve_failed, m.message, ss->vnet_id);
            }
            case MsgType::unserve_req: {
                auto m = from_frame<UnserveReq>(f);
                auto t = sessions_.find(m.target);
                if (t == sessions_.end() || t->second->group != ss->group)
                    return ss->send(to_frame(UnserveResult{m.req, false, 0, "no vnet " + std::to_string(m.target) + " in this group"}));
                auto rid = static_cast<std::uint32_t>(next_unserve_++);
                if (unserves_.size() > 256) unserves_.erase(unserves_.begin());  // bounded: old requests are forgotten
                unserves_[rid] = UnserveRoute{ss->vnet_id, m.req, m.target};
                return t->second->send(to_frame(UnserveAsk{rid, ss->vnet_id, m.ip, m.port}));
            }
            case MsgType::unserve_reply: {
                auto m = from_frame<UnserveReply>(f);
                auto it = unserves_.find(m.req);
                if (it == unserves_.end() || it->second.target != ss->vnet_id) return;
                auto u = it->second;
                unserves_.erase(it);
                if (auto b = sessions_.find(u.from); b != sessions_.end())
                    b->second->send(to_frame(UnserveResult{u.req, m.ok, m.id, m.message}));
                return;
            }
            default:
                throw WireError("unexpected " + std::string(type_name(f.type)) + " on a control connection");
        }
    } catch (const WireError& e) {
        ss->log.warn("protocol error: ", e.what());
        ss->send(to_frame(ErrorMsg{ErrorCode::protocol, e.what()}));
        drop_session(ss, std::string("protocol error: ") + e.what());
    }
}

std::string RouteServer::claim_refusal(const std::string& group, const ServeSpec& spec) const {
    const Group* g = cfg_.group(group);
    if (!g) return "unknown group";
    auto now = Clock::now();
    if (spec.remote_port) {
        // The listener's kind follows the type: a vnet's serve of any other type gets no port at all.
        if (spec.type != "tcp" && spec.type != "udp") return "remote_port of a serve of unknown type '" + spec.type + "'";
        if (!port_allowed(g->claims, spec.remote_port))
            return "remote_port " + std::to_string(spec.remote_port) + " is not in group '" + group + "' ports on this route";
        if (held_.port_holder(spec.remote_port, group, now))
            return "remote_port " + std::to_string(spec.remote_port) + " was released by another group moments ago and is kept for it";
    }
    for (const auto& raw : spec.domains) {
        std::string d;
        try {
            d = normalize_domain(raw);
        } catch (const tn::ParseError&) {
            continue;  // the registry refuses it with the reason
        }
        if (!domain_allowed(g->claims, d)) return "custom domain '" + d + "' is not in group '" + group + "' domains on this route";
        if (held_.domain_holder(d, group, now))
            return "custom domain '" + d + "' was released by another group moments ago and is kept for it";
    }
    return {};
}

void RouteServer::add_serve(const SessionPtr& ss, const Serve& m) {
    if (auto why = claim_refusal(ss->group, m.spec); !why.empty()) {
        ss->log.warn("serve '", m.spec.name, "' refused: ", why);
        return ss->send(to_frame(ServeResult{m.req, false, m.spec.id, why}));
    }
    auto res = reg_.add_serve(ss->vnet_id, m.spec);
    if (res.ok && m.spec.remote_port) {
        std::string why;
        const auto& rec = *reg_.find_serve(ss->group, res.id);
        if (!(m.spec.type == "udp" ? open_udp_remote(rec, why) : open_remote_port(rec, why))) {
            reg_.remove_serve(ss->vnet_id, res.id);
            res.ok = false;
            res.message = why;
        }
    }
    if (!res.ok) {
        ss->log.warn("serve '", m.spec.name, "' refused: ", res.message);
        return ss->send(to_frame(ServeResult{m.req, false, m.spec.id, res.message}));
    }
    if (const auto* rec = reg_.find_serve(ss->group, res.id)) held_.claimed(rec->spec.domains, rec->spec.remote_port);
    std::string note = res.reassigned ? "dynamic id " + std::to_string(m.spec.id) + " was taken; assigned " + std::to_string(res.id) : "";
    ss->send(to_frame(ServeResult{m.req, true, res.id, note}));
    ss->log.info("serve up id=", res.id, " name=", m.spec.name,
                 m.spec.remote_port ? " remote_port=" + std::to_string(m.spec.remote_port) : "", res.reassigned ? " (reassigned)" : "");
    broadcast(ss->group, to_frame(ServeUp{reg_.find_serve(ss->group, res.id)->entry()}));
}

bool RouteServer::open_remote_port(const ServeRecord& r, std::string& why) {
    auto acc = std::make_shared<tcp::acceptor>(io_);
    error_code ec;
    tcp::endpoint ep(asio::ip::make_address(cfg_.proxy_bind, ec), r.spec.remote_port);
    if (ec) {
        why = "proxy_bind '" + cfg_.proxy_bind + "' is not an IP address";
        return false;
    }
    acc->open(ep.protocol(), ec);
    if (!ec) acc->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acc->bind(ep, ec);
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        why = "cannot listen on remote_port " + std::to_string(r.spec.remote_port) + ": " + ec.message();
        return false;
    }
    auto port = r.spec.remote_port;
    auto loop = accept_loop(acc, [this, port](tcp::socket sock) { accept_remote(std::move(sock), port); },
                            "remote_port " + std::to_string(port));
    remotes_[port] = Remote{loop, r.group, r.spec.id};
    return true;
}

void RouteServer::accept_remote(tcp::socket sock, std::uint16_t port) {
    auto r = remotes_.find(port);
    if (r == remotes_.end() || stopped_) return;
    error_code e2;
    auto ep = sock.remote_endpoint(e2);
    if (e2) return;
    sock.set_option(tcp::no_delay(true), e2);
    request_link(std::make_shared<Stream>(std::move(sock)), r->second.group, r->second.id, UserKind::tcp, peer_log(ep));
}

void RouteServer::link_open(StreamPtr s, const log::Context& lg, const LinkOpen& m) {
    auto ss = link_session(s, MsgType::link_open, m.vnet_id, m.id, m.mac, m.cipher);
    if (!ss) {
        lg.warn("link refused: no session proof");
        return refuse(s, ErrorCode::auth, "link not proven by a live session (vnet id and proof do not match)");
    }
    // The using vnet drew the link key and boxed it for us under its ticket and this connection's
    // challenge. Sealing is not negotiable: a route with tls = true takes no plain link, and the
    // other way round.
    // The e2e flag (PROTOCOL.relay.md §12) is passed on untouched: the two vnets check it.
    auto cipher = static_cast<Cipher>(m.cipher);
    auto base = base_cipher(m.cipher);
    if ((m.cipher & 0x7f) > 2) throw WireError("a LINK_OPEN with an unknown cipher");
    if (cfg_.tls && base == Cipher::none) throw WireError("a plain LINK_OPEN on a route with tls = true");
    if (!cfg_.tls && base != Cipher::none) throw WireError("a sealed LINK_OPEN on a route with tls = false");
    LinkKey key{};
    if (cfg_.tls) key = open_key_box(ss->ticket, s->challenge, m.id, m.key_box, BoxWay::to_route, cipher);
    if (s->carried++) ++links_reused_;
    request_link(s, ss->group, m.id, UserKind::link, lg, {}, ss->vnet_id, key, cipher);
    relay::wipe(key);
}

void RouteServer::request_link(StreamPtr user, const std::string& group, std::uint16_t id, UserKind kind, const log::Context& lg,
                               Bytes prefix, std::uint32_t user_vnet, const LinkKey& key, Cipher cipher, const UdpFlowUser* udp) {
    const ServeRecord* r = reg_.find_serve(group, id);
    auto close_user = [&](ErrorCode c, const std::string& m, int http_status) {
        if (udp) udp_failed(*udp, m);
        else if (kind == UserKind::link) refuse(user, c, m);
        else if (kind == UserKind::http) http_reply(user, http::error_page(http_status, m), http_status, true);
        else if (kind == UserKind::tls) tls_refuse(user, lg, TlsAlert::internal_error, http_status == 503 ? "limit" : "no_serve", m);
        else user->close();
    };
    if (!r) return close_user(ErrorCode::not_found, "no serve " + std::to_string(id) + " in this group", 502);
    std::string source;
    if (udp) source = udp->source;
    else if (kind != UserKind::link) {
        error_code e;
        auto ep = user->socket().remote_endpoint(e);
        if (e) return user->close();
        source = source_key(ep.address());
    }
    PendingKey k{r->vnet_id, id, group, kind, source};
    if (auto why = links_.admit(k); why != Refusal::none) {
        auto text = describe(why, group, id, source);
        if (auto held = pending_log_.allow(Clock::now()))
            lg.warn("link to serve ", id, " refused: ", text, *held ? " (" + std::to_string(*held) + " more not logged)" : "");
        if (auto t = link_tag(group, r->vnet_id, id, 0)) traffic_.failed(t->group, t->serve_vnet, t->serve);
        return close_user(ErrorCode::limit, "limit: " + text, 503);
    }
    auto ss = sessions_.find(r->vnet_id);
    if (ss == sessions_.end()) return close_user(ErrorCode::not_found, "no serve " + std::to_string(id) + " in this group", 502);
    auto link_id = links_.next_link_id();
    Pending p{user, std::move(prefix), nullptr, user_vnet, key, cipher, {}};
    if (udp) p.udp = *udp;
    if (kind != UserKind::link && cfg_.tls) {  // the route is the using endpoint: its own key
        p.key = random_link_key();
        p.cipher = kLinkCipher;
    }
    // A using vnet's first records may have come in with its LINK_OPEN (the link's `unread`) or wait
    // in our socket: they stay there until the pair is bound. It learns that its link was taken with
    // LINK_OPENED, right before the first record from the serving side (one wake-up for both).
    // A standby link of the serving vnet saves it opening one now: the request goes down that link,
    // which becomes the serving side of this connection.
    if (auto l = links_.take_standby(r->vnet_id, [](const StreamPtr& c) { return c->socket().is_open(); })) p.via = *l;
    // Everyone but a vhost client takes a failed local connect as a closed link, so the serving vnet
    // connects while the link is bound. On a standby link that means no answer to wait for: the
    // request and LINK_OK go down together and the pair is bound at once.
    bool early = kind != UserKind::http;
    LinkRequest req{link_id, id, early};
    lg.debug("link ", link_id, " requested: serve ", id);
    auto via = p.via;
    if (via) {
        error_code ec;
        via->socket().cancel(ec);  // ends its idle wait (link_pooled): the link is ours now
        if (early) return bind_link(link_id, Pairing::Pending{std::move(k), std::move(p), {}}, via, encode_frame(to_frame(req)));
    }
    links_.wait(link_id, std::move(k), std::move(p), Clock::now());
    if (!via) return ss->second->send(to_frame(req));
    async_write_bytes(via, encode_frame(to_frame(req)), [](error_code) {});
    standby_answer(via, lg, link_id);
}

void RouteServer::link_pooled(StreamPtr s, log::Context lg, SessionPtr ss, bool standby, bool reparked) {
    if (!ss) {
        lg.warn("pre-opened link refused: no session proof");
        return refuse(s, ErrorCode::auth, "link not proven by a live session (vnet id and proof do not match)");
    }
    if (standby && !s->unread.empty()) {
        // The vnet sends nothing on a standby link until it is requested: bytes a read took in with
        // its last frame are a protocol error.
        lg.warn("protocol error on a standby link: bytes on an idle standby link");
        return s->close();
    }
    if (auto v = links_.pool(ss->vnet_id, s, standby, reparked); v != PoolVerdict::pooled) {
        if (v == PoolVerdict::no_vnet) return s->close();
        auto cap = links_.limits().pooled;
        ss->log.warn("pre-opened link refused: it already has ", cap);
        return refuse(s, ErrorCode::limit, "limit: " + std::to_string(cap) + " pre-opened links per vnet");
    }
    auto vnet = ss->vnet_id;
    std::weak_ptr<Session> weak = ss;
    // No setup timeout here: the link lives as long as its session.
    if (standby) {
        // A standby link waits for us; the vnet sends nothing on it until it is requested, so any
        // readiness is its close (or a protocol error). request_link cancels this wait when it takes
        // the link out of the pool.
        return s->socket().async_wait(tcp::socket::wait_read, [this, s, vnet](error_code) {
            if (stopped_ || !links_.unpool(vnet, s)) return;  // taken, or the session is gone
            s->close();
        });
    }
    // A parked link's next frame is the vnet's LINK_OPEN.
    async_read_frame(s, [this, s, lg, weak, vnet](error_code ec, Frame f, std::string why) {
        auto p = weak.lock();
        if (stopped_) return;
        if (p) links_.unpool(vnet, s);
        if (ec || !p || p->closed) {
            if (ec == asio::error::invalid_argument) lg.warn("protocol error on a pre-opened link: ", why);
            return s->close();
        }
        try {
            if (f.type == MsgType::link_open) return link_open(s, lg, from_frame<LinkOpen>(f));
            throw WireError("unexpected " + std::string(type_name(f.type)) + " on a pre-opened link");
        } catch (const WireError& e) {
            lg.warn("protocol error on a pre-opened link: ", e.what());
            refuse(s, ErrorCode::protocol, e.what());
        }
    });
}

void RouteServer::standby_answer(StreamPtr s, log::Context lg, std::uint64_t link_id) {
    // A request without `early` (a vhost client) on a standby link: the vnet connects first and
    // answers LINK_ACCEPT or LINK_FAIL on the same link.
    async_read_frame(s, [this, s, lg, link_id](error_code ec, Frame f, std::string why) {
        if (stopped_) return;
        if (ec) {
            if (ec == asio::error::invalid_argument) lg.warn("protocol error on a standby link: ", why);
            s->close();
            return fail_pending(link_id, PendingEnd::link_closed);
        }
        try {
            if (f.type == MsgType::link_accept) return link_accept(s, lg, from_frame<LinkAccept>(f));
            if (f.type == MsgType::link_fail) {
                auto m = from_frame<LinkFail>(f);
                s->close();
                return fail_pending(link_id, PendingEnd::serve_failed, m.message);
            }
            throw WireError("unexpected " + std::string(type_name(f.type)) + " on a standby link");
        } catch (const WireError& e) {
            lg.warn("protocol error on a standby link: ", e.what());
            refuse(s, ErrorCode::protocol, e.what());
            fail_pending(link_id, PendingEnd::protocol);
        }
    });
}

void RouteServer::fail_pending(std::uint64_t link_id, PendingEnd why, const std::string& detail, std::optional<std::uint32_t> from) {
    if (auto e = links_.end(link_id, why, from)) end_pending(std::move(*e), detail);
}

void RouteServer::end_pending(Pairing::Ended e, const std::string& detail) {
    auto& p = e.pending.data;
    std::string why(describe(e.why));
    if (!detail.empty()) why += ": " + detail;
    log_.info("link ", e.link_id, " to serve ", e.pending.key.id, " failed: ", why);
    const auto& k = e.pending.key;
    if (auto t = link_tag(k.group, k.serve_vnet, k.id, 0)) traffic_.failed(t->group, t->serve_vnet, t->serve);
    if (p.via) p.via->close();
    auto kind = e.pending.key.kind;
    if (p.udp) udp_failed(*p.udp, why);
    else if (kind == UserKind::link) p.user->close();  // it has its LINK_OPENED: a close is the refusal now
    else if (kind == UserKind::http)
        http_reply(p.user, http::error_page(http_status(e.why), "serve " + std::to_string(e.pending.key.id) + ": " + why),
                   http_status(e.why), true);
    else if (kind == UserKind::tls) tls_refuse(p.user, log_.with("link", std::to_string(e.link_id)), TlsAlert::internal_error, "link_failed", why);
    else p.user->close();
}

void RouteServer::link_accept(StreamPtr s, const log::Context& lg, const LinkAccept& m) {
    auto ss = link_session(s, MsgType::link_accept, m.vnet_id, m.link_id, m.mac);
    auto p = ss ? links_.pair(m.link_id, ss->vnet_id) : std::nullopt;
    if (!p) {
        lg.warn("link accept refused: no session proof or unknown link");
        return refuse(s, ErrorCode::auth, "link not proven by a live session, or unknown link id");
    }
    bind_link(m.link_id, std::move(*p), s, {});
}

void RouteServer::bind_link(std::uint64_t link_id, Pairing::Pending pp, StreamPtr s, Bytes first) {
    const auto& k = pp.key;
    auto& p = pp.data;
    auto ss = sessions_.find(k.serve_vnet);
    if (ss == sessions_.end()) {
        s->close();
        if (p.udp) return udp_failed(*p.udp, "the serving vnet is gone");
        return p.user->close();
    }
    // With tls = true the serving endpoint gets the link key in a box under its own ticket and this
    // connection's challenge. Where the route is the using endpoint itself (remote_port, vhost) it
    // keeps the key and seals that leg (tls = false: frames it in clear records); between two vnets it
    // relays records it does not open.
    LinkOk ok{link_id};
    ok.cipher = static_cast<std::uint8_t>(p.cipher);
    if (cfg_.tls) ok.key_box = seal_key_box(ss->second->ticket, s->challenge, link_id, p.key, BoxWay::to_vnet, p.cipher);
    std::shared_ptr<LinkSeal> own;
    if (k.kind != UserKind::link) own = std::make_shared<LinkSeal>(p.cipher, p.key, Side::use);
    relay::wipe(p.key);
    auto ok_frame = encode_frame(to_frame(ok));
    first.insert(first.end(), ok_frame.begin(), ok_frame.end());
    if (k.kind == UserKind::link) return relay_vnet_pair(link_id, pp, s, std::move(first));
    start_route_leg(link_id, std::move(pp), std::move(s), std::move(first), std::move(own));
}

std::optional<LinkTag> RouteServer::link_tag(const std::string& group, std::uint32_t serve_vnet, std::uint16_t id,
                                             std::uint32_t user_vnet) const {
    auto sv = sessions_.find(serve_vnet);
    if (sv == sessions_.end()) return std::nullopt;
    LinkTag t{group, sv->second->name, {}, id};
    if (auto uv = sessions_.find(user_vnet); user_vnet && uv != sessions_.end()) t.user_vnet = uv->second->name;
    return t;
}

void RouteServer::link_closed(std::uint64_t link_id, const LinkEnd& end, std::uint64_t ab, std::uint64_t ba, const LinkTag& tag,
                              std::uint64_t in, std::uint64_t out) {
    bytes_total_ += ab + ba;
    // An abort is the route's own doing (stopping, a session gone), not the link's error.
    traffic_.closed(tag, in, out, !end.clean() && end.kind != LinkEnd::Kind::aborted);
    if (end.peer_fault()) log_.warn("link ", link_id, " closed: ", end.text());
    else log_.debug("link ", link_id, " closed", end.clean() ? "" : ": " + end.text());
    active_.erase(link_id);
}

void RouteServer::relay_vnet_pair(std::uint64_t link_id, const Pairing::Pending& pp, const StreamPtr& s, Bytes first) {
    const auto& k = pp.key;
    const auto& p = pp.data;
    // Two vnets: records pass unopened, and after both EOF records both links are parked again.
    // The request and LINK_OK go to the serving side in one write with the using side's first
    // records.
    ++links_total_;
    auto user = p.user;
    auto uv = p.user_vnet, sv = k.serve_vnet;
    auto tag = link_tag(k.group, sv, k.id, uv).value_or(LinkTag{k.group, {}, {}, k.id});  // bind_link found the serving session
    traffic_.opened(tag);
    auto ended = std::make_shared<bool>(false);  // it may end inside start(), before it is listed
    auto relay = RecordRelay::start(p.user, s, pipes_, link_tag_size(static_cast<std::uint8_t>(p.cipher)), encode_frame(to_frame(LinkOpened{link_id})), std::move(first),
                                    [this, link_id, user, s, uv, sv, ended, tag](const LinkEnd& end, const RecordRelay& r, bool keep_user,
                                                                                 bool keep_serve) {
        *ended = true;
        link_closed(link_id, end, r.bytes_a_to_b(), r.bytes_b_to_a(), tag, r.payload_a_to_b(), r.payload_b_to_a());
        if (!end.clean()) return;
        if (keep_user && !stopped_) repark(user, uv, false);
        else user->close();
        if (keep_serve && !stopped_) repark(s, sv, true);
        else s->close();
    });
    if (!*ended) active_[link_id] = Active{nullptr, relay, tag};
}

void RouteServer::start_route_leg(std::uint64_t link_id, Pairing::Pending pp, StreamPtr s, Bytes first,
                                  std::shared_ptr<LinkSeal> own) {
    if (pp.data.udp) return udp_bound(link_id, pp.key, *pp.data.udp, std::move(s), std::move(first), std::move(own));
    // LINK_OK goes to the serving side (after the standby request, if any), followed for an HTTP
    // client by the request head the route already read; the pump starts after it, so writes never
    // overlap.
    if (!pp.data.prefix.empty()) {
        // An HTTP head or a TLS ClientHello: a record like everything after it, of at most
        // kMaxHead or kMaxHelloBytes < kRecordMax bytes.
        Bytes rec(pp.data.prefix.size() + kRecordOverhead);
        rec.resize(own->tx.seal(pp.data.prefix, rec.data()));
        first.insert(first.end(), rec.begin(), rec.end());
    }
    auto tag = link_tag(pp.key.group, pp.key.serve_vnet, pp.key.id, 0).value_or(LinkTag{pp.key.group, {}, {}, pp.key.id});
    std::uint64_t pre = pp.data.prefix.size();
    async_write_bytes(s, std::move(first), [this, link_id, s, pp, own, tag, pre](error_code ec) {
        const auto& k = pp.key;
        const auto& p = pp.data;
        if (ec || stopped_) {
            if (!stopped_) traffic_.failed(tag.group, tag.serve_vnet, tag.serve);
            s->close();
            return p.user->close();
        }
        ++links_total_;
        if (k.kind == UserKind::http) ++vhost_links_;
        if (k.kind == UserKind::tls) ++tls_links_;
        // The route is the using end (remote_port, vhost): after a clean end the link goes back to the
        // serving vnet's standby links when both ends' EOF records said they keep it.
        if (s->carried++) ++links_reused_;
        auto sv = k.serve_vnet;
        auto self = std::make_shared<std::weak_ptr<Pump>>();  // set once start() returns
        traffic_.opened(tag);
        auto ended = std::make_shared<bool>(false);  // it may end inside start() (bad bytes read ahead), before it is listed
        auto pump = Pump::start(p.user, s, [this, link_id, s, sv, self, tag, pre, ended](const LinkEnd& end, std::uint64_t ab, std::uint64_t ba) {
            *ended = true;
            link_closed(link_id, end, ab, ba, tag, pre + ab, ba);
            auto pm = self->lock();
            if (end.clean() && pm && pm->peer_kept() && s->socket().is_open() && !stopped_) return repark(s, sv, true);
            s->close();
        }, nullptr, std::make_unique<LinkSeal>(std::move(*own)), [this, sv]() { return can_repark(sv); });
        *self = pump;
        if (!*ended) active_[link_id] = Active{pump, nullptr, tag, pre};
    });
}

bool RouteServer::can_repark(std::uint32_t vnet_id) const {
    auto it = sessions_.find(vnet_id);
    return !stopped_ && it != sessions_.end() && !it->second->closed && links_.can_repark(vnet_id);
}

void RouteServer::repark(StreamPtr s, std::uint32_t vnet_id, bool standby) {
    if (!can_repark(vnet_id)) return s->close();
    auto it = sessions_.find(vnet_id);
    // The next setup frame's proof and LINK_OK's key box must never reuse the last challenge (the box
    // key is derived from it and seals with a fixed nonce): both ends step it the same way.
    s->challenge = next_challenge(s->challenge);
    link_pooled(s, it->second->log, it->second, standby, true);
}

void RouteServer::sweep() {
    auto now = Clock::now();
    // Only the sessions to drop are collected (drop_session changes sessions_): a copy of the whole
    // map every second cost an allocation per vnet per sweep.
    std::vector<std::pair<SessionPtr, const char*>> drop;
    for (auto& [id, ss] : sessions_)
        if (now - ss->last_rx > ss->silence_timeout) drop.emplace_back(ss, "silent for 3 heartbeat intervals (heartbeat timeout)");
        else if (ss->w->queued() > kMaxQueued) drop.emplace_back(ss, "not reading its control stream");
    for (auto& [ss, why] : drop) drop_session(ss, why);
    held_.expire(now);
    for (auto& e : links_.tick(now)) end_pending(std::move(e), {});
    // The legs the route seals itself (remote_port, vhosts) keep no AEAD state while they wait for
    // bytes: 2.3 of the ~4.6 KiB an idle one held (bench/relay/SCALE.md).
    for (auto& [id, a] : active_)
        if (a.pump) a.pump->trim_if_idle();
    sweep_timer_.expires_after(std::max<Clock::duration>(std::chrono::milliseconds(20), scaled(std::chrono::milliseconds(1000))));
    sweep_timer_.async_wait([this](error_code ec) {
        if (!ec && !stopped_) sweep();
    });
}

}  // namespace tn::route
