// End-to-end link handshake I/O (vnet_e2e.hpp): two records, each read bounded by its header first.
#include "vnet_e2e.hpp"


#include "relay/digest.hpp"
#include "vnet_agent.hpp"
#include "vnet_serve_join.hpp"

namespace tn::vnet {

using namespace relay;

namespace {
// Reads one record under `outer` and opens it. Only a DATA record of exactly one handshake message is
// taken, checked on its header before its body is read: a peer that sends anything else (data from a
// vnet without e2e_secret, an EOF) ends the handshake with nothing buffered for it.
void read_hs_record(const StreamPtr& s, std::shared_ptr<LinkSeal> outer, std::function<void(std::string why, E2eMsg m)> done) {
    auto rec = std::make_shared<Bytes>(kRecordHeader);
    s->async_read(asio::buffer(rec->data(), kRecordHeader), [s, outer, rec, done](error_code ec, std::size_t) {
        if (ec) return done("the link closed during the end-to-end handshake (the other vnet's log says why)", {});
        RecordOpener::Head h;
        try {
            h = outer->rx.parse(*rec);
        } catch (const WireError& e) {
            return done(std::string("not an end-to-end handshake: ") + e.what(), {});
        }
        if (h.eof || h.plain != kE2eMsgSize)
            return done("not an end-to-end handshake (a record of " + std::to_string(h.plain) +
                            " bytes): is e2e_secret set on one vnet only?", {});
        rec->resize(h.size());
        s->async_read(asio::buffer(rec->data() + kRecordHeader, h.size() - kRecordHeader), [outer, rec, done](error_code ec2, std::size_t) {
            if (ec2) return done("the link closed during the end-to-end handshake", {});
            std::array<std::uint8_t, kE2eMsgSize> plain{};
            try {
                outer->rx.open(*rec, plain.data());
                done({}, parse_e2e(plain));
            } catch (const WireError& e) {
                done(std::string("bad end-to-end handshake record: ") + e.what(), {});
            }
        });
    });
}

// Ends a local connection with a reset: its client sees an abort, never a clean end of nothing.
void reset_close(Stream& s) {
    error_code ec;
    s.socket().set_option(asio::socket_base::linger(true, 0), ec);
    s.close();
}

Bytes seal_msg(LinkSeal& outer, const E2eMsg& m) {
    auto plain = encode_e2e(m);
    Bytes out(plain.size() + kRecordOverhead);
    out.resize(outer.tx.seal(plain, out.data()));
    return out;
}
}  // namespace

E2eUse::E2eUse(const E2eSecret& s, std::uint16_t serve, std::unique_ptr<LinkSeal> o) : secret(s), serve_id(serve), outer(std::move(o)) {}
E2eUse::~E2eUse() { wipe_e2e_secret(secret); }

std::uint8_t link_cipher_byte(bool tls, bool e2e) {
    auto c = static_cast<std::uint8_t>(tls ? kLinkCipher : Cipher::none);
    return e2e ? static_cast<std::uint8_t>(c | kE2eFlag) : c;
}

std::shared_ptr<E2eUse> e2e_use_begin(const E2eSecret& secret, std::uint16_t serve_id, std::unique_ptr<LinkSeal> outer, Bytes& first) {
    auto hs = std::make_shared<E2eUse>(secret, serve_id, std::move(outer));
    // The link id is not known yet (LINK_OPENED brings it): the first MAC covers the serve id, the
    // answer's covers both.
    auto rec = seal_msg(*hs->outer, e2e_init(secret, hs->eph, {serve_id, 0}));
    first.insert(first.end(), rec.begin(), rec.end());
    return hs;
}

void e2e_use_finish(const StreamPtr& s, std::shared_ptr<E2eUse> hs, E2eDone done) {
    async_read_frame(s, [s, hs, done](error_code ec, Frame f, std::string why) {
        if (ec) return done(false, "the link closed before the serving vnet answered the handshake (" + why + "; its log says why)", nullptr);
        std::uint64_t link_id = 0;
        try {
            if (f.type == MsgType::error) return done(false, from_frame<ErrorMsg>(f).message, nullptr);
            link_id = from_frame<LinkOpened>(f).link_id;
        } catch (const WireError& e) {
            return done(false, std::string("protocol error: ") + e.what(), nullptr);
        }
        std::shared_ptr<LinkSeal> outer(std::move(hs->outer));
        read_hs_record(s, outer, [hs, link_id, done](std::string err, E2eMsg reply) {
            if (!err.empty()) return done(false, err, nullptr);
            auto r = e2e_finish(hs->secret, hs->eph, {hs->serve_id, link_id}, reply);
            if (!r.ok) return done(false, r.why, nullptr);
            auto seal = std::make_unique<LinkSeal>(kE2eCipher, r.key, Side::use);
            relay::wipe(r.key);
            done(true, {}, std::move(seal));
        });
    });
}

void e2e_serve(const StreamPtr& s, std::unique_ptr<LinkSeal> outer_seal, const E2eSecret& secret, E2eContext ctx, E2eDone done) {
    std::shared_ptr<LinkSeal> outer(std::move(outer_seal));
    auto key = std::make_shared<E2eUse>(secret, ctx.serve_id, nullptr);  // holds the secret, wiped after
    read_hs_record(s, outer, [s, outer, key, ctx, done](std::string err, E2eMsg init) {
        if (!err.empty()) return done(false, err, nullptr);
        E2eMsg reply;
        auto r = e2e_respond(key->secret, key->eph, ctx, init, reply);
        if (!r.ok) return done(false, r.why, nullptr);
        auto seal = std::make_unique<LinkSeal>(kE2eCipher, r.key, Side::serve);
        relay::wipe(r.key);
        auto shared_seal = std::make_shared<std::unique_ptr<LinkSeal>>(std::move(seal));
        async_write_bytes(s, seal_msg(*outer, reply), [shared_seal, done](error_code ec) {
            if (ec) return done(false, "the link closed during the end-to-end handshake", nullptr);
            done(true, {}, std::move(*shared_seal));
        });
    });
}

// The link is bound; the handshake decides whether it carries anything: until it checked, the local
// service (connected meanwhile) gets no byte.
void VnetAgent::serve_link_e2e(std::shared_ptr<ServeJoin> j, StreamPtr s, std::unique_ptr<LinkSeal> outer) {
    e2e_serve(s, std::move(outer), *cfg_.e2e_secret, {j->id, j->link_id}, [this, j, s](bool ok, std::string why, std::unique_ptr<LinkSeal> seal) {
        serve_link_bound(j, s, ok, ok ? why : "e2e refused: " + why, std::move(seal));
    });
}

// A use's link with e2e_secret: LINK_OPEN and the handshake's first record go out together; the
// client's bytes wait (in its socket) until the serving vnet answered and proved the same secret.
void VnetAgent::use_link_e2e(StreamPtr lp, StreamPtr s, std::uint16_t id, std::string use_name) {
    auto [first, outer] = link_open_frame(s, id);
    auto hs = e2e_use_begin(*cfg_.e2e_secret, id, std::move(outer), first);
    auto ul = use_log(use_name);
    async_write_bytes(s, std::move(first), [this, lp, s, hs, use_name, ul](relay::error_code ec) {
        if (ec || stopped_) {
            s->close();
            return lp->close();
        }
        e2e_use_finish(s, hs, [this, lp, s, use_name, ul](bool ok, std::string why, std::unique_ptr<LinkSeal> seal) {
            if (!ok || stopped_) {
                if (!ok) {
                    ul.warn("link refused: e2e: ", why);
                    ++e2e_refused_;
                }
                s->close();
                return reset_close(*lp);
            }
            ++links_total_;
            if (auto* u = use_by_name(use_name)) ++u->open_links;
            pumps_.add(Pump::start(lp, s, [this, use_name, ul, s, gen = pools_.generation()](const LinkEnd& end, std::uint64_t ab, std::uint64_t ba) {
                bytes_total_ += ab + ba;
                if (auto* u = use_by_name(use_name); u && u->open_links) --u->open_links;
                if (end.peer_fault()) ul.warn("link closed: ", end.text());
                if (end.clean() && s->socket().is_open()) reuse_link(s, false, gen);
            }, nullptr, std::move(seal), keep_fn(false)));
        });
    });
}


// A UDP flow's link with e2e_secret: as use_link_e2e, the flow's datagrams wait in its queue (bounded,
// counted when it overflows) until the handshake is done.
void VnetAgent::udp_flow_link_e2e(StreamPtr s, const std::string& use_name, std::uint64_t flow) {
    auto* u = use_by_name(use_name);
    if (!u || !u->udp) return s->close();
    std::weak_ptr<UdpUse> weak = u->udp;
    auto [first, outer] = link_open_frame(s, u->cfg.id);
    auto hs = e2e_use_begin(*cfg_.e2e_secret, u->cfg.id, std::move(outer), first);
    auto ul = use_log(use_name);
    async_write_bytes(s, std::move(first), [this, s, hs, weak, use_name, flow, ul](error_code ec) {
        if (ec || stopped_) {
            s->close();
            if (auto uu = weak.lock()) uu->failed(flow, "link to the route failed");
            return;
        }
        e2e_use_finish(s, hs, [this, s, weak, use_name, flow, ul](bool ok, std::string why, std::unique_ptr<LinkSeal> seal) {
            auto uu = weak.lock();
            auto* lu = use_by_name(use_name);
            if (!ok || !uu || !lu || stopped_) {
                if (!ok) {
                    ul.warn("link refused: e2e: ", why);
                    ++e2e_refused_;
                }
                s->close();
                if (uu) uu->failed(flow, "link refused: e2e: " + why);
                return;
            }
            ++links_total_;
            ++lu->open_links;
            auto link = uu->linked(flow, s, std::move(seal), [this, use_name](std::uint64_t bytes) {
                bytes_total_ += bytes;
                if (auto* eu = use_by_name(use_name); eu && eu->open_links) --eu->open_links;
            }, {});
            if (link) link->resume_read();
        });
    });
}

}  // namespace tn::vnet
