// SFTP v3 READ/WRITE pipelining on the sftp channel (draft-ietf-secsh-filexfer-02, sections 6.4, 7).
#include "ssh/sftp_pipe.hpp"

#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include <chrono>
#include <cstring>
#include <map>

#include "base/error.hpp"

namespace tn::ssh {

namespace {

constexpr std::uint8_t fxp_read = 5, fxp_write = 6, fxp_status = 101, fxp_data = 103;
constexpr std::uint32_t fx_ok = 0, fx_eof = 1;
// Replies are bounded by the server's own 256 KiB message cap; anything larger is a broken peer.
constexpr std::uint32_t max_reply = 256 * 1024 + 1024;
// A blocking channel read gives up after the session timeout; this many in a row means a dead peer.
constexpr int max_idle_timeouts = 6;

void put32(std::string& b, std::uint32_t v) {
    char c[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
    b.append(c, 4);
}
void put64(std::string& b, std::uint64_t v) {
    put32(b, static_cast<std::uint32_t>(v >> 32));
    put32(b, static_cast<std::uint32_t>(v));
}
std::uint32_t get32(const char* p) {
    auto u = reinterpret_cast<const unsigned char*>(p);
    return (std::uint32_t(u[0]) << 24) | (std::uint32_t(u[1]) << 16) | (std::uint32_t(u[2]) << 8) | u[3];
}

const char* status_text(std::uint32_t code) {
    switch (code) {
    case 2: return "no such file";
    case 3: return "permission denied";
    case 4: return "failure (disk full?)";
    case 5: return "bad message";
    case 6: return "no connection";
    case 7: return "connection lost";
    case 8: return "operation unsupported";
    default: return "error";
    }
}

}  // namespace

struct SftpPipe::Reply {
    std::uint8_t type = 0;
    std::uint32_t id = 0;
    std::uint32_t status = 0;
    std::string msg;
    std::string body;             // the whole packet after the length
    std::size_t data_off = 0, data_len = 0;  // DATA payload inside body
};

SftpPipe::SftpPipe(sftp_session_struct* sftp, sftp_file_struct* file, std::string what, PipeLimits limits)
    : sftp_(sftp), file_(file), what_(std::move(what)), limits_(limits) {
    handle_.assign(static_cast<const char*>(ssh_string_data(file->handle)), ssh_string_len(file->handle));
}

void SftpPipe::send(const std::string& packet) {
    if (ssh_channel_write(sftp_->channel, packet.data(), static_cast<uint32_t>(packet.size())) !=
        static_cast<int>(packet.size()))
        throw Error(ExitCode::unavailable, "connection lost while sending to " + what_ + ": " + ssh_get_error(sftp_->session));
}

void SftpPipe::read_exact(char* buf, std::size_t n) {
    int idle = 0;
    while (n > 0) {
        int r = ssh_channel_read(sftp_->channel, buf, static_cast<uint32_t>(n), 0);
        if (r < 0 || (r == 0 && (ssh_channel_is_eof(sftp_->channel) || ssh_channel_is_closed(sftp_->channel))))
            throw Error(ExitCode::unavailable, "connection lost while reading from " + what_ + ": " + ssh_get_error(sftp_->session));
        if (r == 0) {
            if (++idle >= max_idle_timeouts) throw Error(ExitCode::unavailable, "no reply from the server for " + what_);
            continue;
        }
        idle = 0;
        buf += r;
        n -= static_cast<std::size_t>(r);
    }
}

SftpPipe::Reply SftpPipe::receive() {
    char hdr[4];
    read_exact(hdr, 4);
    std::uint32_t len = get32(hdr);
    if (len < 5 || len > max_reply) throw Error(ExitCode::unavailable, "malformed sftp reply for " + what_);
    Reply r;
    r.body.resize(len);
    read_exact(r.body.data(), len);
    r.type = static_cast<std::uint8_t>(r.body[0]);
    r.id = get32(r.body.data() + 1);
    if (r.type == fxp_status) {
        if (len < 9) throw Error(ExitCode::unavailable, "malformed sftp status for " + what_);
        r.status = get32(r.body.data() + 5);
        if (len >= 13) {
            std::uint32_t mlen = get32(r.body.data() + 9);
            if (mlen <= len - 13) r.msg.assign(r.body.data() + 13, mlen);
        }
    } else if (r.type == fxp_data) {
        if (len < 9) throw Error(ExitCode::unavailable, "malformed sftp data for " + what_);
        r.data_len = get32(r.body.data() + 5);
        r.data_off = 9;
        if (r.data_len > len - 9) throw Error(ExitCode::unavailable, "malformed sftp data length for " + what_);
    } else {
        throw Error(ExitCode::unavailable, "unexpected sftp reply type " + std::to_string(r.type) + " for " + what_);
    }
    return r;
}

void SftpPipe::fail_status(std::uint32_t code, const std::string& msg, const char* op) {
    auto exit = code == 3 ? ExitCode::no_perm : code == 6 || code == 7 ? ExitCode::unavailable : ExitCode::io;
    throw Error(exit, std::string("cannot ") + op + " " + what_ + ": " + status_text(code) + (msg.empty() ? "" : " (" + msg + ")"));
}

std::uint64_t SftpPipe::upload(std::uint64_t offset, const PipeSource& src, const PipeProgress& progress) {
    using Clock = std::chrono::steady_clock;
    struct Sent {
        std::uint32_t len;
        Clock::time_point at;
        bool large;
    };
    std::map<std::uint32_t, Sent> inflight;  // id -> length, when it went out
    std::string packet;
    bool eof = false;
    std::uint32_t bad = fx_ok;
    std::string bad_msg;
    const std::size_t head = 4 + 1 + 4 + 4 + handle_.size() + 8 + 4;
    // Small writes first, then large ones (PipeLimits), each phase with its own window: a reply adjusts
    // the window of the phase its write went out in, so small writes' short round trips do not make
    // large ones look queued.
    UploadWindow small_window(limits_.start_in_flight, limits_.write_in_flight);
    UploadWindow large_window(limits_.large_start_in_flight, limits_.in_flight);
    const std::uint64_t first = offset;
    auto large = [&] { return offset - first >= limits_.small_upload; };
    while (!inflight.empty() || (!eof && bad == fx_ok)) {
        while (!eof && bad == fx_ok && inflight.size() < (large() ? large_window : small_window).size()) {
            std::uint32_t chunk = large() ? limits_.chunk : limits_.write_chunk;
            packet.resize(head + chunk);
            std::size_t n = src(offset, packet.data() + head, chunk);
            if (n == 0) {
                eof = true;
                break;
            }
            packet.resize(head + n);
            std::string h;
            h.reserve(head);
            put32(h, static_cast<std::uint32_t>(head - 4 + n));
            h.push_back(static_cast<char>(fxp_write));
            std::uint32_t id = next_id();
            put32(h, id);
            put32(h, static_cast<std::uint32_t>(handle_.size()));
            h += handle_;
            put64(h, offset);
            put32(h, static_cast<std::uint32_t>(n));
            std::memcpy(packet.data(), h.data(), head);
            auto at = Clock::now();
            send(packet);
            inflight.emplace(id, Sent{static_cast<std::uint32_t>(n), at, large()});
            offset += n;
        }
        if (inflight.empty()) break;
        auto r = receive();
        auto it = inflight.find(r.id);
        if (it == inflight.end() || r.type != fxp_status)
            throw Error(ExitCode::unavailable, "sftp reply to an unknown request for " + what_);
        if (r.status != fx_ok && bad == fx_ok) {
            bad = r.status;  // stop sending, but collect every outstanding reply first
            bad_msg = r.msg;
        }
        (it->second.large ? large_window : small_window)
            .on_reply(std::chrono::duration<double>(Clock::now() - it->second.at).count(), inflight.size());
        if (r.status == fx_ok && progress) progress(it->second.len);
        inflight.erase(it);
    }
    if (bad != fx_ok) fail_status(bad, bad_msg, "write");
    return offset;
}

std::uint64_t SftpPipe::download(std::uint64_t offset, std::uint64_t end, const PipeSink& sink,
                                 const PipeProgress& progress) {
    struct Want {
        std::uint64_t off;
        std::uint32_t len;
    };
    std::map<std::uint32_t, Want> inflight;
    std::map<std::uint64_t, std::uint32_t> retry;  // the unread tails of short reads
    std::uint64_t next = offset, delivered = 0;
    bool eof = false;
    std::uint32_t bad = fx_ok;
    std::string bad_msg;
    auto request = [&](std::uint64_t off, std::uint32_t len) {
        std::string p;
        put32(p, static_cast<std::uint32_t>(1 + 4 + 4 + handle_.size() + 8 + 4));
        p.push_back(static_cast<char>(fxp_read));
        std::uint32_t id = next_id();
        put32(p, id);
        put32(p, static_cast<std::uint32_t>(handle_.size()));
        p += handle_;
        put64(p, off);
        put32(p, len);
        send(p);
        inflight.emplace(id, Want{off, len});
    };
    for (;;) {
        while (bad == fx_ok && inflight.size() < limits_.in_flight) {
            if (!retry.empty()) {
                auto it = retry.begin();
                request(it->first, it->second);
                retry.erase(it);
            } else if (!eof && next < end) {
                auto len = static_cast<std::uint32_t>(std::min<std::uint64_t>(limits_.chunk, end - next));
                request(next, len);
                next += len;
            } else {
                break;
            }
        }
        if (inflight.empty()) break;
        auto r = receive();
        auto it = inflight.find(r.id);
        if (it == inflight.end()) throw Error(ExitCode::unavailable, "sftp reply to an unknown request for " + what_);
        Want w = it->second;
        inflight.erase(it);
        if (r.type == fxp_status) {
            if (r.status == fx_eof) {
                eof = true;  // the file ended early (it shrank): stop asking past it
                continue;
            }
            if (bad == fx_ok) {
                bad = r.status;
                bad_msg = r.msg;
            }
            continue;
        }
        if (r.data_len > w.len) throw Error(ExitCode::unavailable, "sftp server sent more than asked for " + what_);
        if (bad == fx_ok && r.data_len > 0) {
            sink(w.off, r.body.data() + r.data_off, r.data_len);
            delivered += r.data_len;
            if (progress) progress(r.data_len);
        }
        if (r.data_len < w.len && r.data_len > 0)
            retry.emplace(w.off + r.data_len, static_cast<std::uint32_t>(w.len - r.data_len));
        else if (r.data_len == 0)
            eof = true;
    }
    if (bad != fx_ok) fail_status(bad, bad_msg, "read");
    return delivered;
}

}  // namespace tn::ssh
