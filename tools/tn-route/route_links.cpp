// tn-route's control messages, link pairing, remote_port listeners and the heartbeat sweep.
#include <algorithm>
#include <sstream>

#include "http_head.hpp"
#include "relay/auth.hpp"
#include "relay/seal.hpp"
#include "route_session.hpp"

namespace tn::route {

using namespace relay;


namespace {
void refuse(const StreamPtr& s, ErrorCode c, const std::string& m) {
    async_write_bytes(s, encode_frame(to_frame(ErrorMsg{c, m})), [s](error_code) { s->close(); });
}
}  // namespace

void RouteServer::session_frame(const SessionPtr& ss, Frame f) {
    try {
        switch (f.type) {
            case MsgType::ping: return ss->send(to_frame(Pong{from_frame<Ping>(f).token}));
            case MsgType::pong: from_frame<Pong>(f); return;
            case MsgType::serve: return add_serve(ss, from_frame<Serve>(f));
            case MsgType::serve_close: {
                auto m = from_frame<ServeClose>(f);
                if (auto r = reg_.remove_serve(ss->vnet_id, m.id)) {
                    log_.info("serve down id=", m.id, " name=", r->spec.name, " vnet=", ss->vnet_id);
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
            case MsgType::link_done: return link_done(ss, from_frame<LinkDone>(f).link_id);
            case MsgType::link_fail: {
                auto m = from_frame<LinkFail>(f);
                if (auto it = pending_.find(m.link_id); it != pending_.end() && it->second.serve_vnet == ss->vnet_id)
                    fail_pending(m.link_id, "the serving vnet could not connect: " + m.message);
                return;
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
        log_.warn("protocol error from vnet ", ss->vnet_id, " (", ss->peer, "): ", e.what());
        ss->send(to_frame(ErrorMsg{ErrorCode::protocol, e.what()}));
        drop_session(ss, std::string("protocol error: ") + e.what());
    }
}

void RouteServer::add_serve(const SessionPtr& ss, const Serve& m) {
    auto res = reg_.add_serve(ss->vnet_id, m.spec);
    if (res.ok && m.spec.remote_port) {
        std::string why;
        if (!open_remote_port(*reg_.find_serve(ss->group, res.id), why)) {
            reg_.remove_serve(ss->vnet_id, res.id);
            res.ok = false;
            res.message = why;
        }
    }
    if (!res.ok) {
        log_.warn("serve '", m.spec.name, "' of vnet ", ss->vnet_id, " refused: ", res.message);
        return ss->send(to_frame(ServeResult{m.req, false, m.spec.id, res.message}));
    }
    std::string note = res.reassigned ? "dynamic id " + std::to_string(m.spec.id) + " was taken; assigned " + std::to_string(res.id) : "";
    ss->send(to_frame(ServeResult{m.req, true, res.id, note}));
    log_.info("serve up id=", res.id, " name=", m.spec.name, " vnet=", ss->vnet_id, " group=", ss->group,
              m.spec.remote_port ? " remote_port=" + std::to_string(m.spec.remote_port) : "", res.reassigned ? " (reassigned)" : "");
    broadcast(ss->group, to_frame(ServeUp{reg_.find_serve(ss->group, res.id)->entry()}));
}

bool RouteServer::open_remote_port(const ServeRecord& r, std::string& why) {
    auto acc = std::make_shared<tcp::acceptor>(io_);
    error_code ec;
    tcp::endpoint ep(tcp::v4(), r.spec.remote_port);
    if (cfg_.listen.host.find(':') != std::string::npos) ep = tcp::endpoint(tcp::v6(), r.spec.remote_port);
    acc->open(ep.protocol(), ec);
    if (!ec) acc->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acc->bind(ep, ec);
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        why = "cannot listen on remote_port " + std::to_string(r.spec.remote_port) + ": " + ec.message();
        return false;
    }
    remotes_[r.spec.remote_port] = Remote{acc, r.group, r.spec.id};
    accept_remote(r.spec.remote_port);
    return true;
}

void RouteServer::accept_remote(std::uint16_t port) {
    auto it = remotes_.find(port);
    if (it == remotes_.end()) return;
    auto acc = it->second.acc;
    acc->async_accept([this, port, acc](error_code ec, tcp::socket sock) {
        if (ec || stopped_) return;  // closed: the serve is gone
        auto r = remotes_.find(port);
        if (r == remotes_.end() || r->second.acc != acc) return;
        error_code e2;
        auto ep = sock.remote_endpoint(e2);
        std::string peer = e2 ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
        sock.set_option(tcp::no_delay(true), e2);
        request_link(std::make_shared<Stream>(std::move(sock)), r->second.group, r->second.id, UserKind::tcp, peer);
        accept_remote(port);
    });
}

void RouteServer::link_open(StreamPtr s, std::string peer, const LinkOpen& m) {
    auto ss = link_session(s, MsgType::link_open, m.vnet_id, m.id, m.mac);
    if (!ss) {
        log_.warn("link from ", peer, " refused: no session proof");
        return refuse(s, ErrorCode::auth, "link not proven by a live session (vnet id and proof do not match)");
    }
    request_link(s, ss->group, m.id, UserKind::link, peer, {}, ss->ticket, ss->vnet_id);
}

void RouteServer::request_link(StreamPtr user, const std::string& group, std::uint16_t id, UserKind kind, std::string peer,
                               Bytes prefix, const Ticket& user_ticket, std::uint32_t user_vnet) {
    const ServeRecord* r = reg_.find_serve(group, id);
    auto close_user = [&](ErrorCode c, const std::string& m, int http_status) {
        if (kind == UserKind::link) refuse(user, c, m);
        else if (kind == UserKind::http) http_reply(user, http::error_page(http_status, m), http_status, true);
        else user->close();
    };
    if (!r) return close_user(ErrorCode::not_found, "no serve " + std::to_string(id) + " in this group", 502);
    if (pending_.size() >= reg_.limits().pending_links) {
        log_.warn("link to serve ", id, " from ", peer, " refused: ", pending_.size(), " links pending (limit)");
        return close_user(ErrorCode::limit, "limit: too many pending links on this route", 503);
    }
    auto ss = sessions_.find(r->vnet_id);
    if (ss == sessions_.end()) return close_user(ErrorCode::not_found, "the serving vnet is gone", 502);
    auto link_id = next_link_++;
    // A standby link of the serving vnet saves it opening one now (and a TLS handshake): the
    // request goes down that link, which becomes the serving side of this connection.
    StreamPtr via;
    auto& standby = ss->second->standby;
    while (!standby.empty() && !via) {
        if (standby.front()->socket().is_open()) via = standby.front();
        standby.pop_front();
    }
    pending_[link_id] = Pending{user, r->vnet_id, id, group, kind, std::move(prefix), via, user_ticket, user_vnet, {},
                                Clock::now() + std::chrono::seconds(10)};
    LinkRequest req{link_id, id, kind == UserKind::link};
    if (via) async_write_bytes(via, encode_frame(to_frame(req)), [](error_code) {});
    else ss->second->send(to_frame(req));
    log_.debug("link ", link_id, " requested: serve ", id, " for ", peer);
    if (kind != UserKind::link) return;
    // The using vnet gets its LINK_OK now, in parallel with the serving side's setup: its first
    // bytes wait in our socket buffer (unread) until the pair is bound, which takes a round trip
    // off every new connection. If the serving side fails, we close this link instead.
    auto& p = pending_[link_id];
    LinkOk ok{link_id};
    if (cfg_.tls) {
        p.key = random_link_key();
        ok.cipher = static_cast<std::uint8_t>(kLinkCipher);
        ok.key_box = seal_key_box(p.user_ticket, user->challenge, link_id, p.key);
    }
    async_write_bytes(user, encode_frame(to_frame(ok)), [](error_code) {});
}

void RouteServer::link_pooled(StreamPtr s, std::string peer, SessionPtr ss, bool standby) {
    if (!ss) {
        log_.warn("pre-opened link from ", peer, " refused: no session proof");
        return refuse(s, ErrorCode::auth, "link not proven by a live session (vnet id and proof do not match)");
    }
    if (ss->pool.size() >= kMaxPooled) {
        log_.warn("pre-opened link from vnet ", ss->vnet_id, " refused: it already has ", kMaxPooled);
        return refuse(s, ErrorCode::limit, "limit: " + std::to_string(kMaxPooled) + " pre-opened links per vnet");
    }
    ss->pool.insert(s);
    if (standby) ss->standby.push_back(s);
    std::weak_ptr<Session> weak = ss;
    // No setup timeout here: the link lives as long as its session. Its next frame is the vnet's
    // LINK_OPEN (parked) or its answer to our LINK_REQUEST (standby).
    async_read_frame(s, [this, s, peer, weak, standby](error_code ec, Frame f, std::string why) {
        auto p = weak.lock();
        if (p) {
            p->pool.erase(s);
            if (auto it = std::find(p->standby.begin(), p->standby.end(), s); it != p->standby.end()) p->standby.erase(it);
        }
        if (stopped_) return;
        auto asked = std::find_if(pending_.begin(), pending_.end(), [&](const auto& e) { return e.second.via == s; });
        if (ec || !p || p->closed) {
            if (ec == asio::error::invalid_argument) log_.warn("protocol error on a pre-opened link from ", peer, ": ", why);
            s->close();
            if (asked != pending_.end()) fail_pending(asked->first, "the serving vnet's link closed");
            return;
        }
        try {
            if (!standby && f.type == MsgType::link_open) return link_open(s, peer, from_frame<LinkOpen>(f));
            if (standby && f.type == MsgType::link_accept) return link_accept(s, peer, from_frame<LinkAccept>(f));
            if (standby && f.type == MsgType::link_fail) {
                auto m = from_frame<LinkFail>(f);
                s->close();
                if (asked != pending_.end() && asked->first == m.link_id)
                    fail_pending(m.link_id, "the serving vnet could not connect: " + m.message);
                return;
            }
            throw WireError("unexpected " + std::string(type_name(f.type)) + " on a pre-opened link");
        } catch (const WireError& e) {
            log_.warn("protocol error on a pre-opened link from ", peer, ": ", e.what());
            refuse(s, ErrorCode::protocol, e.what());
            if (asked != pending_.end()) fail_pending(asked->first, "protocol error on the serving vnet's link");
        }
    });
}

void RouteServer::fail_pending(std::uint64_t link_id, const std::string& why, int http_status) {
    auto it = pending_.find(link_id);
    if (it == pending_.end()) return;
    auto p = std::move(it->second);
    pending_.erase(it);
    log_.info("link ", link_id, " to serve ", p.id, " failed: ", why);
    if (p.kind == UserKind::link) p.user->close();  // it has its LINK_OK: a close is the refusal now
    else if (p.kind == UserKind::http) http_reply(p.user, http::error_page(http_status, "serve " + std::to_string(p.id) + ": " + why), http_status, true);
    else p.user->close();
}

void RouteServer::link_accept(StreamPtr s, std::string peer, const LinkAccept& m) {
    auto ss = link_session(s, MsgType::link_accept, m.vnet_id, m.link_id, m.mac);
    auto it = pending_.find(m.link_id);
    if (!ss || it == pending_.end() || it->second.serve_vnet != ss->vnet_id) {
        log_.warn("link accept from ", peer, " refused: no session proof or unknown link");
        return refuse(s, ErrorCode::auth, "link not proven by a live session, or unknown link id");
    }
    auto p = std::move(it->second);
    pending_.erase(it);
    // With tls = true the route picks the link key and boxes it for each endpoint under that
    // endpoint's ticket and challenge; where the route is the using endpoint itself (remote_port,
    // vhost) it keeps the key and seals that leg. Between two vnets it relays records it cannot open.
    LinkOk ok_serve{m.link_id};
    std::shared_ptr<LinkSeal> own;
    if (cfg_.tls) {
        auto key = p.kind == UserKind::link ? p.key : random_link_key();  // a using vnet has its box already
        ok_serve.cipher = static_cast<std::uint8_t>(kLinkCipher);
        ok_serve.key_box = seal_key_box(ss->ticket, s->challenge, m.link_id, key);
        if (p.kind != UserKind::link) own = std::make_shared<LinkSeal>(kLinkCipher, key, Side::use);
        OPENSSL_cleanse(key.data(), key.size());
        OPENSSL_cleanse(p.key.data(), p.key.size());
    }
    auto serve_vnet = ss->vnet_id;
    auto bind = [this, link_id = m.link_id, s, p, own, serve_vnet]() {
        ++links_total_;
        if (p.kind == UserKind::http) ++vhost_links_;
        std::unique_ptr<LinkSeal> seal;
        if (own) seal = std::make_unique<LinkSeal>(std::move(*own));
        auto pump = Pump::start(p.user, s, [this, link_id](const std::string& err, std::uint64_t ab, std::uint64_t ba) {
            bytes_total_ += ab + ba;
            if (err.find("protocol error") != std::string::npos || err.find("truncated") != std::string::npos)
                log_.warn("link ", link_id, " closed: ", err);
            else
                log_.debug("link ", link_id, " closed", err.empty() ? "" : ": " + err);
            active_.erase(link_id);
        }, &pipes_, nullptr, std::move(seal));
        bool reusable = cfg_.tls && p.kind == UserKind::link;
        Active a{pump, p.group, p.id, reusable ? p.user : nullptr, reusable ? s : nullptr, p.user_vnet, serve_vnet, 0};
        active_[link_id] = std::move(a);
    };
    // LINK_OK goes to the serving side (a using vnet had its own at LINK_OPEN), followed for an HTTP
    // client by the request head the route already read; the pump starts after it, so writes never
    // overlap.
    auto first = encode_frame(to_frame(ok_serve));
    if (p.kind == UserKind::http && !p.prefix.empty()) {
        if (own) {  // sealed like everything after it: a record of at most kMaxHead < kRecordMax bytes
            Bytes rec(p.prefix.size() + kRecordOverhead);
            rec.resize(own->tx.seal(p.prefix, rec.data()));
            first.insert(first.end(), rec.begin(), rec.end());
        } else {
            first.insert(first.end(), p.prefix.begin(), p.prefix.end());
        }
    }
    async_write_bytes(s, std::move(first), [bind, p, s](error_code ec) {
        if (ec) {
            s->close();
            return p.user->close();
        }
        bind();
    });
}

void RouteServer::link_done(const SessionPtr& ss, std::uint64_t link_id) {
    auto it = active_.find(link_id);
    if (it == active_.end() || !it->second.user) return;  // closed already, or a leg the route ends itself
    auto& a = it->second;
    if (a.serve_vnet == ss->vnet_id && !(a.done & 2)) a.done |= 2;
    else if (a.user_vnet == ss->vnet_id && !(a.done & 1)) a.done |= 1;
    else return;
    if (a.done != 3) return;
    // Both vnets received the other's EOF record, so every byte of both directions has passed: the
    // pump is idle. (If not, a vnet sent past its EOF record: that link closes.)
    auto pump = a.pump;
    if (!pump->detach()) {
        log_.warn("link ", link_id, " reported done with bytes still in flight; closing it");
        return pump->abort();
    }
    bytes_total_ += pump->bytes_a_to_b() + pump->bytes_b_to_a();
    auto user = a.user, serve = a.serve;
    auto uv = a.user_vnet, sv = a.serve_vnet;
    active_.erase(it);
    ++links_reused_;
    log_.debug("link ", link_id, " ended cleanly; both links parked again");
    repark(user, uv, false);
    repark(serve, sv, true);
}

void RouteServer::repark(StreamPtr s, std::uint32_t vnet_id, bool standby) {
    auto it = sessions_.find(vnet_id);
    if (it == sessions_.end() || it->second->closed || it->second->pool.size() >= kMaxPooled) return s->close();
    // A fresh challenge: the next setup frame's proof and LINK_OK's key box must never reuse the
    // last one's (the box key is derived from it and seals with a fixed nonce).
    s->challenge = random_nonce();
    async_write_bytes(s, encode_frame(to_frame(Challenge{s->challenge})), [](error_code) {});
    link_pooled(s, it->second->peer, it->second, standby);
}

void RouteServer::sweep() {
    auto now = Clock::now();
    auto silent = scaled(std::chrono::milliseconds(15000));
    for (auto& [id, ss] : std::map(sessions_))
        if (now - ss->last_rx > silent) drop_session(ss, "silent for 15 s (heartbeat timeout)");
        else if (ss->w->queued() > kMaxQueued) drop_session(ss, "not reading its control stream");
    for (auto it = pending_.begin(); it != pending_.end();) {
        auto id = it->first;
        bool late = it->second.deadline < now;
        ++it;
        if (late) fail_pending(id, "the serving vnet did not answer in 10 s", 504);
    }
    sweep_timer_.expires_after(std::max<Clock::duration>(std::chrono::milliseconds(20), scaled(std::chrono::milliseconds(1000))));
    sweep_timer_.async_wait([this](error_code ec) {
        if (!ec && !stopped_) sweep();
    });
}

}  // namespace tn::route
