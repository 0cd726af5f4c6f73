// The simulated clients' event loop: handshakes through ClientCore timers, ICMP echoes sealed by
// ClientCore::on_tun, replies opened by ClientCore::on_datagram.
#include "swarm.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "base/error.hpp"
#include "tun/session.hpp"
#include "tun/wire.hpp"

namespace tn::bench {
namespace {

constexpr std::size_t ip_header = 20, icmp_header = 8;
constexpr auto lost_after = std::chrono::milliseconds(300);
// Timers (handshake retries, rekeys) run on a scale of seconds: scanning all cores every few
// milliseconds is plenty and keeps the scan off the per-packet path.
constexpr auto timer_scan = std::chrono::milliseconds(5);

std::uint16_t checksum(const std::uint8_t* p, std::size_t n) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i + 1 < n; i += 2) sum += (std::uint32_t(p[i]) << 8) | p[i + 1];
    if (n & 1) sum += std::uint32_t(p[n - 1]) << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum);
}

void put_u16(std::uint8_t* p, std::uint16_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v);
}

// An IPv4 ICMP echo request of `size` bytes in all, its send time (steady clock ns) in the payload.
void build_echo(std::uint8_t* p, std::size_t size, std::uint32_t src, std::uint32_t dst, std::uint16_t id,
                std::uint16_t seq, std::int64_t sent_ns) {
    std::memset(p, 0, size);
    p[0] = 0x45;
    put_u16(p + 2, static_cast<std::uint16_t>(size));
    p[6] = 0x40;  // don't fragment
    p[8] = 64;
    p[9] = 1;  // ICMP
    tun::put_u32(p + 12, src);
    tun::put_u32(p + 16, dst);
    put_u16(p + 10, checksum(p, ip_header));
    std::uint8_t* icmp = p + ip_header;
    icmp[0] = 8;
    put_u16(icmp + 4, id);
    put_u16(icmp + 6, seq);
    tun::put_u64(icmp + icmp_header, static_cast<std::uint64_t>(sent_ns));
    put_u16(icmp + 2, checksum(icmp, size - ip_header));
}

std::int64_t ns_of(tun::TimePoint t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

double percentile(std::vector<double>& v, double q) {
    if (v.empty()) return 0;
    auto k = static_cast<std::size_t>(q * double(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k];
}

}  // namespace

Swarm::Swarm(const std::vector<tun::Key>& keys, const tun::Key& server_pub, const sockaddr_in& server,
             const std::string& bind_ip, unsigned addresses, std::size_t packet_size, bool offer_aes)
    : server_(server), packet_size_(std::max(packet_size, ip_header + icmp_header + 8)),
      buf_(tun::max_datagram_len + 64), scratch_(tun::max_datagram_len + 64) {
    if (packet_size_ > 1400) throw Error(ExitCode::usage, "--size is at most 1400 (the tunnel's MTU is 1420)");
    peers_.reserve(keys.size());
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (::inet_pton(AF_INET, bind_ip.c_str(), &local.sin_addr) != 1)
        throw Error(ExitCode::usage, "--bind: not an IPv4 address: " + bind_ip);
    std::uint32_t first = ntohl(local.sin_addr.s_addr);
    for (std::size_t i = 0; i < keys.size(); ++i) {
        local.sin_addr.s_addr = htonl(first + std::uint32_t(i % std::max(1u, addresses)));
        tun::ClientSettings s;
        s.key.priv = keys[i];
        s.key.pub = tun::public_key(keys[i]);
        s.server_public = server_pub;
        s.offer_aes = offer_aes;
        UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd || ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0)
            throw Error(ExitCode::io, std::string("peer socket: ") + std::strerror(errno));
        // One peer may have the whole flood window in flight (scale.py gives N = 1 all of it): room
        // for its replies, so the generator's socket is not where they drop (root: past rmem_max).
        int rcvbuf = 1 << 20;
        if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
            ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        ep_.add(fd.get());
        if (by_fd_.size() <= std::size_t(fd.get())) by_fd_.resize(std::size_t(fd.get()) + 1, -1);
        by_fd_[std::size_t(fd.get())] = static_cast<std::int32_t>(i);
        peers_.push_back(SimPeer{tun::ClientCore(s), std::move(fd), static_cast<std::uint16_t>(i + 1)});
    }
}

void Swarm::send_dgram(SimPeer& p, tun::Bytes d) {
    if (::sendto(p.fd.get(), d.data(), d.size(), 0, reinterpret_cast<const sockaddr*>(&server_), sizeof server_) < 0)
        ++send_failed_;  // a full socket buffer: the datagram is lost, as on a real link
}

void Swarm::run_timers(tun::TimePoint now, bool force) {
    if (!force && now - timers_at_ < timer_scan) return;
    timers_at_ = now;
    auto wall = std::chrono::system_clock::now();
    for (auto& p : peers_) {
        auto due = p.core.next_deadline();
        if (due && *due <= now) {
            auto a = p.core.tick(now, wall, scratch_.data());
            if (!a.send.empty()) send_dgram(p, a.send);
        }
        if (!p.window) continue;
        bool freed = false;
        while (!p.in_flight.empty() && now - p.in_flight.front().second > lost_after) {
            // Lost on the way (a full queue somewhere): free its slot and carry on.
            p.in_flight.pop_front();
            ++p.lost;
            if (p.outstanding) --p.outstanding;
            freed = true;
        }
        if (freed)
            while (p.outstanding < p.window && send_echo(p, now)) {}
    }
}

bool Swarm::send_echo(SimPeer& p, tun::TimePoint now) {
    const auto& push = p.core.push();
    if (!p.core.connected() || !push) return false;
    std::uint8_t* pkt = buf_.data() + tun::transport_header_len;
    build_echo(pkt, packet_size_, push->address, (push->address & ~((1u << (32 - push->prefix)) - 1)) | 1, p.ident,
               ++p.seq, ns_of(now));
    auto a = p.core.on_tun(buf_.data(), packet_size_, now);
    if (a.send.empty()) return false;
    send_dgram(p, a.send);
    ++p.sent;
    ++p.outstanding;
    if (p.window) p.in_flight.emplace_back(p.seq, now);
    return true;
}

void Swarm::on_reply(SimPeer& p, const std::uint8_t* pkt, std::size_t len, tun::TimePoint now) {
    if (len < ip_header + icmp_header + 8 || pkt[9] != 1) return;
    const std::uint8_t* icmp = pkt + (pkt[0] & 0x0f) * 4;
    if (icmp + icmp_header + 8 > pkt + len || icmp[0] != 0) return;  // echo replies only
    if (((icmp[4] << 8) | icmp[5]) != p.ident) return;
    ++p.replies;
    p.reply_bytes += len;
    if (p.window) {
        // Usually the oldest: one peer's echoes are one flow, answered in order.
        auto seq = std::uint16_t((icmp[6] << 8) | icmp[7]);
        auto it = std::find_if(p.in_flight.begin(), p.in_flight.end(), [&](auto& e) { return e.first == seq; });
        if (it == p.in_flight.end()) return;  // counted lost already: its slot was reused
        p.in_flight.erase(it);
    }
    if (p.outstanding) --p.outstanding;
    if (counting_) rtts_us_.push_back(double(ns_of(now) - std::int64_t(tun::get_u64(icmp + icmp_header))) / 1e3);
    while (p.outstanding < p.window && send_echo(p, now)) {}
}

void Swarm::receive(SimPeer& p, tun::TimePoint now) {
    for (int i = 0; i < 64; ++i) {
        ssize_t n = ::recv(p.fd.get(), buf_.data(), tun::max_datagram_len, 0);
        if (n <= 0) return;
        auto a = p.core.on_datagram(buf_.data(), std::size_t(n), now, scratch_.data());
        if (!a.send.empty()) send_dgram(p, a.send);
        if (!a.to_tun.empty()) on_reply(p, a.to_tun.data(), a.to_tun.size(), now);
    }
}

void Swarm::pump(int timeout_ms) {
    auto ready = ep_.wait(timeout_ms);
    auto now = tun::Clock::now();
    for (const epoll_event& ev : ready) {
        auto fd = std::size_t(ev.data.fd);
        if (fd < by_fd_.size() && by_fd_[fd] >= 0) receive(peers_[std::size_t(by_fd_[fd])], now);
    }
    run_timers(now, false);
}

ConnectResult Swarm::connect(double timeout) {
    auto t0 = tun::Clock::now();
    auto limit = t0 + std::chrono::duration_cast<tun::Clock::duration>(std::chrono::duration<double>(timeout));
    run_timers(t0, true);  // every peer initiates now
    ConnectResult r;
    for (;;) {
        r.connected = std::size_t(std::count_if(peers_.begin(), peers_.end(), [](auto& p) { return p.core.connected(); }));
        if (r.connected == peers_.size() || tun::Clock::now() >= limit) break;
        pump(10);
    }
    r.seconds = std::chrono::duration<double>(tun::Clock::now() - t0).count();
    for (auto& p : peers_) {
        r.initiations += p.core.stats().handshakes_sent;
        r.cookies += p.core.stats().cookies;
        auto* kp = p.core.current_keypair();
        r.aes += kp && p.core.connected() && kp->suite == tun::Suite::aes256_gcm;
    }
    return r;
}

void Swarm::start_phase() {
    rtts_us_.clear();
    send_failed_ = 0;
    counting_ = true;
    mark_sent_.clear(), mark_replies_.clear(), mark_bytes_.clear(), mark_lost_.clear();
    for (auto& p : peers_) {
        mark_sent_.push_back(p.sent), mark_replies_.push_back(p.replies);
        mark_bytes_.push_back(p.reply_bytes), mark_lost_.push_back(p.lost);
    }
}

PhaseResult Swarm::end_phase(double seconds) {
    counting_ = false;
    PhaseResult r;
    r.seconds = seconds;
    for (std::size_t i = 0; i < peers_.size(); ++i) {
        auto& p = peers_[i];
        r.sent += p.sent - mark_sent_[i];
        r.replies += p.replies - mark_replies_[i];
        r.reply_bytes += p.reply_bytes - mark_bytes_[i];
        r.lost += p.lost - mark_lost_[i];
        if (p.replies > mark_replies_[i]) ++r.peers_replied;
    }
    r.send_failed = send_failed_;
    r.rtt_p50_ms = percentile(rtts_us_, 0.5) / 1e3;
    r.rtt_p99_ms = percentile(rtts_us_, 0.99) / 1e3;
    return r;
}

PhaseResult Swarm::steady(double rate, double seconds, bool until_replied) {
    start_phase();
    auto t0 = tun::Clock::now();
    double total_rate = rate * double(peers_.size());
    std::uint64_t done = 0;
    std::size_t next = 0;
    for (;;) {
        auto now = tun::Clock::now();
        double el = std::chrono::duration<double>(now - t0).count();
        if (el >= seconds) break;
        if (until_replied && std::all_of(peers_.begin(), peers_.end(), [&](auto& p) {
                return p.replies > mark_replies_[std::size_t(&p - peers_.data())];
            }))
            break;
        for (auto due = std::uint64_t(total_rate * el); done < due; ++done) {
            send_echo(peers_[next], now);
            next = (next + 1) % peers_.size();
        }
        pump(1);
    }
    for (auto& p : peers_) p.outstanding = 0;
    return end_phase(std::chrono::duration<double>(tun::Clock::now() - t0).count());
}

PhaseResult Swarm::flood(unsigned window, double seconds) {
    // The same total in flight whatever N (scale.py compares N peers with one): N = 1 gets all of it.
    auto n = unsigned(peers_.size());
    for (unsigned i = 0; i < n; ++i) peers_[i].window = std::max(1u, window / n + (i < window % n ? 1u : 0u));
    auto t0 = tun::Clock::now();
    // Replies still in flight from the steady phase would be counted here: start from a quiet link.
    for (auto& p : peers_) p.outstanding = 0, p.in_flight.clear();
    start_phase();
    for (auto& p : peers_)
        while (p.outstanding < p.window && send_echo(p, t0)) {}
    while (tun::Clock::now() - t0 < std::chrono::duration<double>(seconds)) pump(1);
    for (auto& p : peers_) p.window = 0, p.in_flight.clear();
    return end_phase(std::chrono::duration<double>(tun::Clock::now() - t0).count());
}

}  // namespace tn::bench
