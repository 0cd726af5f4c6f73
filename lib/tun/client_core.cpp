// Client timers and packet handling: initiate, confirm with a keepalive, rekey before the keypair
// ages out, and start over when the server stops answering.
#include "tun/client_core.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace tn::tun {

ClientCore::ClientCore(ClientSettings s) : s_(std::move(s)) { crypto_init(); }

seconds ClientCore::dead_after() const {
    // The server answers every keepalive, so with keepalives on, two missed answers mean it is gone.
    return s_.keepalive.count() > 0 ? std::max(seconds(3), 2 * s_.keepalive + seconds(1)) : seconds(15);
}

bool ClientCore::handshake_due(TimePoint now) const {
    if (pending_ && now - pending_sent_ < rekey_timeout) return false;  // one in flight
    if (!current_) return true;
    if (current_->wants_rekey(now)) return true;
    if (!push_ && now - established_at_ >= rekey_timeout) return true;  // the pushed config was lost
    if (now - last_rx_ >= dead_after() && last_tx_ > last_rx_) return true;
    return false;
}

std::optional<TimePoint> ClientCore::next_deadline() const {
    if (!current_) return pending_ ? pending_sent_ + rekey_timeout : TimePoint{};  // no session: due now
    TimePoint t = current_->created + rekey_after_time;
    if (pending_) t = std::min(t, pending_sent_ + rekey_timeout);
    if (!push_) t = std::min(t, established_at_ + rekey_timeout);
    t = std::min(t, last_rx_ + dead_after());
    if (s_.keepalive.count() > 0) t = std::min(t, last_tx_ + s_.keepalive);
    return t;
}

ClientActions ClientCore::tick(TimePoint now, std::chrono::system_clock::time_point wall, std::uint8_t* scratch) {
    ClientActions a;
    if (handshake_due(now)) {
        std::uint32_t sender = randombytes_random() | 1;  // never 0
        pending_ = create_initiation(s_.key, s_.server_public, generate_keypair(), make_timestamp(wall), sender,
                                     scratch, s_.offer_aes);
        if (!pending_) return a;  // a low-order server key: the config check should have caught it
        pending_sent_ = now;
        ++attempts_;
        ++stats_.handshakes_sent;
        std::memcpy(sent_mac1_.data(), scratch + init_off::mac1, sent_mac1_.size());
        a.send = Bytes(scratch, initiation_len);
        if (cookie_ && now - cookie_at_ < cookie_use_life) {
            // The server is under load and gave us a cookie: prove we receive at our address.
            Mac m2 = make_mac2(*cookie_, a.send);
            std::memcpy(scratch + initiation_len, m2.data(), m2.size());
            a.send = Bytes(scratch, initiation_mac2_len);
        }
        return a;
    }
    if (current_ && s_.keepalive.count() > 0 && now - last_tx_ >= s_.keepalive) {
        std::size_t n = seal(*current_, MsgType::data, scratch, 0, now);
        if (n) {
            last_tx_ = now;
            a.send = Bytes(scratch, n);
        }
    }
    return a;
}

ClientActions ClientCore::on_response(Bytes msg, TimePoint now, std::uint8_t* scratch) {
    ClientActions a;
    std::optional<Keypair> kp;
    if (pending_) kp = consume_response(*pending_, s_.key, msg, now, s_.psk);
    if (!kp) {  // not for an initiation in flight, or does not authenticate (a wrong pre-shared key)
        ++stats_.dropped;
        return a;
    }
    pending_.reset();
    attempts_ = 0;
    ++stats_.handshakes_done;
    previous_ = std::move(current_);
    current_ = std::make_unique<Keypair>(std::move(*kp));
    push_.reset();
    established_at_ = last_rx_ = now;
    a.established = true;
    // Confirm at once with a keepalive: the server only uses the keypair after it sees one.
    std::size_t n = seal(*current_, MsgType::data, scratch, 0, now);
    if (n) {
        last_tx_ = now;
        a.send = Bytes(scratch, n);
    }
    return a;
}

ClientActions ClientCore::on_cookie(Bytes msg, std::uint32_t receiver, TimePoint now) {
    ClientActions a;
    std::optional<Cookie> ck;
    if (pending_ && receiver == pending_->sender) ck = open_cookie_reply(s_.server_public, msg, sent_mac1_);
    if (!ck) {
        ++stats_.dropped;
        return a;
    }
    cookie_ = ck;
    cookie_at_ = now;
    ++stats_.cookies;
    a.cookie = true;
    // Retry with mac2 in a second rather than after the full retry timeout.
    pending_sent_ = now - rekey_timeout + seconds(1);
    return a;
}

bool ClientCore::carries(Bytes pkt) const {
    if (inner_ipv4(pkt)) return true;
    // IPv6 only once the server gave us an IPv6 address: until then it would only drop it.
    return push_ && push_->has_v6() && inner_ipv6(pkt);
}

ClientActions ClientCore::on_datagram(std::uint8_t* buf, std::size_t len, TimePoint now, std::uint8_t* scratch) {
    ClientActions a;
    auto c = classify(Bytes(buf, len));
    if (!c) {
        ++stats_.dropped;
        return a;
    }
    if (c->type == MsgType::response) return on_response(Bytes(buf, len), now, scratch);
    if (c->type == MsgType::cookie) return on_cookie(Bytes(buf, len), c->receiver, now);
    if (c->type != MsgType::data && c->type != MsgType::push) {
        ++stats_.dropped;
        return a;
    }
    Keypair* kp = nullptr;
    if (current_ && current_->local_index == c->receiver) kp = current_.get();
    else if (previous_ && previous_->local_index == c->receiver) kp = previous_.get();
    if (!kp) {
        ++stats_.dropped;
        return a;
    }
    auto r = open(*kp, buf, len, c->counter, now);
    if (!r.len) {
        ++stats_.dropped;
        return a;
    }
    last_rx_ = now;
    Bytes plain(buf + transport_header_len, *r.len);
    if (c->type == MsgType::push) {
        auto pc = decode_push(plain);
        if (!pc) {
            ++stats_.dropped;
            return a;
        }
        a.pushed = !push_ || *push_ != *pc;
        push_ = std::move(pc);
        return a;
    }
    if (plain.empty()) return a;  // keepalive
    if (!carries(plain)) {
        ++stats_.dropped;
        return a;
    }
    ++stats_.rx_packets;
    stats_.rx_bytes += plain.size();
    a.to_tun = plain;
    return a;
}

namespace {
// The kernel's own IPv6 talk on the TUN (MLD reports from ::, to ff02::16 and the like): link-local
// by nature, meaningless across the tunnel, and not worth counting as dropped.
bool link_chatter6(Bytes p) {
    if (p.size() < 40 || (p[0] >> 4) != 6) return false;
    bool unspecified = std::all_of(p.begin() + 8, p.begin() + 24, [](std::uint8_t b) { return b == 0; });
    bool link_local = p[8] == 0xfe && (p[9] & 0xc0) == 0x80;
    return p[24] == 0xff || unspecified || link_local;
}
}  // namespace

ClientActions ClientCore::on_tun(std::uint8_t* buf, std::size_t len, TimePoint now) {
    ClientActions a;
    if (link_chatter6(Bytes(buf + transport_header_len, len))) return a;
    if (!current_ || !push_ || !carries(Bytes(buf + transport_header_len, len))) {
        ++stats_.dropped;
        return a;
    }
    std::size_t n = seal(*current_, MsgType::data, buf, len, now);
    if (!n) {
        ++stats_.dropped;
        return a;
    }
    ++stats_.tx_packets;
    stats_.tx_bytes += len;
    last_tx_ = now;
    a.send = Bytes(buf, n);
    return a;
}

}  // namespace tn::tun
