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
// Waits for the reply to one of `inflight`'s requests and finds it there. A control reply in between
// (to after_last's request) is kept for its caller; a reply to nothing asked means a broken server.
template <class Inflight>
typename Inflight::iterator next_reply(SftpWire& wire, Inflight& inflight, const SftpReply*& reply) {
    for (;;) {
        const SftpReply& r = wire.receive();
        auto it = inflight.find(r.id);
        if (it != inflight.end()) {
            reply = &r;
            return it;
        }
        if (!r.control) throw Error(ExitCode::unavailable, "sftp reply to an unknown request for " + wire.what());
        wire.keep(r);
    }
}
}  // namespace

std::string handle_of(sftp_file_struct* file) {
    return std::string(static_cast<const char*>(ssh_string_data(file->handle)), ssh_string_len(file->handle));
}

SftpPipe::SftpPipe(SftpWire& wire, std::string handle, PipeLimits limits)
    : wire_(wire), handle_(std::move(handle)), limits_(limits) {}

void SftpPipe::fail_status(std::uint32_t code, const std::string& msg, const char* op) {
    throw Error(status_exit(code), std::string("cannot ") + op + " " + wire_.what() + ": " + status_text(code) + (msg.empty() ? "" : " (" + msg + ")"));
}

std::uint64_t SftpPipe::upload(std::uint64_t offset, const PipeSource& src, const PipeProgress& progress,
                               const PipeAfterLast& after_last) {
    using Clock = std::chrono::steady_clock;
    struct Sent {
        std::uint32_t len;
        Clock::time_point at;
        bool large;
    };
    std::map<std::uint32_t, Sent> inflight;  // id -> length, when it went out
    std::string packet;
    bool eof = false;
    std::uint32_t bad = fxp::ok;
    std::string bad_msg;
    const std::size_t head = SftpWire::write_head(handle_);
    // Small writes first, then large ones (PipeLimits), each phase with its own window: a reply adjusts
    // the window of the phase its write went out in, so small writes' short round trips do not make
    // large ones look queued.
    UploadWindow small_window(limits_.start_in_flight, limits_.write_in_flight);
    UploadWindow large_window(limits_.large_start_in_flight, limits_.in_flight);
    const std::uint64_t first = offset;
    auto large = [&] { return offset - first >= limits_.small_upload; };
    while (!inflight.empty() || (!eof && bad == fxp::ok)) {
        while (!eof && bad == fxp::ok && inflight.size() < (large() ? large_window : small_window).size()) {
            std::uint32_t chunk = large() ? limits_.chunk : limits_.write_chunk;
            packet.resize(head + chunk);
            std::size_t n = src(offset, packet.data() + head, chunk);
            if (n == 0) {
                eof = true;
                if (after_last) after_last();
                break;
            }
            packet.resize(head + n);
            auto at = Clock::now();
            std::uint32_t id = wire_.send_write(packet, handle_, offset);
            inflight.emplace(id, Sent{static_cast<std::uint32_t>(n), at, large()});
            offset += n;
        }
        if (inflight.empty()) break;
        const SftpReply* reply = nullptr;
        auto it = next_reply(wire_, inflight, reply);
        const SftpReply& r = *reply;
        if (r.type != fxp::status) throw Error(ExitCode::unavailable, "sftp write answered with data for " + wire_.what());
        if (r.status != fxp::ok && bad == fxp::ok) {
            bad = r.status;  // stop sending, but collect every outstanding reply first
            bad_msg = r.msg;
        }
        (it->second.large ? large_window : small_window)
            .on_reply(std::chrono::duration<double>(Clock::now() - it->second.at).count(), inflight.size());
        if (r.status == fxp::ok && progress) progress(it->second.len);
        inflight.erase(it);
    }
    if (bad != fxp::ok) fail_status(bad, bad_msg, "write");
    return offset;
}

std::uint64_t SftpPipe::download(std::uint64_t offset, std::uint64_t end, const PipeSink& sink,
                                 const PipeProgress& progress, const PipeAfterLast& after_last) {
    struct Want {
        std::uint64_t off;
        std::uint32_t len;
    };
    std::map<std::uint32_t, Want> inflight;
    std::map<std::uint64_t, std::uint32_t> retry;  // the unread tails of short reads
    std::uint64_t next = offset, delivered = 0;
    bool eof = false, last_sent = false;
    std::uint32_t bad = fxp::ok;
    std::string bad_msg;
    auto request = [&](std::uint64_t off, std::uint32_t len) { inflight.emplace(wire_.send_read(handle_, off, len), Want{off, len}); };
    for (;;) {
        while (bad == fxp::ok && !last_sent && inflight.size() < limits_.in_flight) {
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
        if (after_last && !last_sent && (bad != fxp::ok || (retry.empty() && (eof || next >= end)))) {
            last_sent = true;
            after_last();
        }
        if (inflight.empty()) break;
        const SftpReply* reply = nullptr;
        auto it = next_reply(wire_, inflight, reply);
        const SftpReply& r = *reply;
        Want w = it->second;
        inflight.erase(it);
        if (r.type == fxp::status) {
            if (r.status == fxp::eof) {
                eof = true;  // the file ended early (it shrank): stop asking past it
                continue;
            }
            if (bad == fxp::ok) {
                bad = r.status;
                bad_msg = r.msg;
            }
            continue;
        }
        if (r.type != fxp::data) throw Error(ExitCode::unavailable, "sftp read answered with a handle for " + wire_.what());
        if (r.data_len > w.len) throw Error(ExitCode::unavailable, "sftp server sent more than asked for " + wire_.what());
        if (bad == fxp::ok && r.data_len > 0) {
            sink(w.off, r.body.data() + r.data_off, r.data_len);
            delivered += r.data_len;
            if (progress) progress(r.data_len);
        }
        if (r.data_len < w.len && r.data_len > 0 && !last_sent)
            retry.emplace(w.off + r.data_len, static_cast<std::uint32_t>(w.len - r.data_len));
        else if (r.data_len < w.len)
            eof = true;  // nothing more can be asked on a closed handle: a full-read server's short read is EOF
    }
    if (bad != fxp::ok) fail_status(bad, bad_msg, "read");
    return delivered;
}

}  // namespace tn::ssh
