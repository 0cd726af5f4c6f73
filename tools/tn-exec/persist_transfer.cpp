// put/get through a --persist master (persist_transfer.hpp): request encoding on the client, the
// transfer itself on the master.
#include "persist_transfer.hpp"

#include <poll.h>

#include <algorithm>
#include <cstdlib>

#include "base/error.hpp"
#include "persist.hpp"
#include "persist_wire.hpp"
#include "progress.hpp"
#include "ssh/exec.hpp"

namespace tn::exec {

namespace {

constexpr std::uint32_t flag_recursive = 1, flag_resume = 2, flag_progress = 4, flag_preserve = 8, flag_stream = 32;
constexpr unsigned umask_shift = 16;  // the client's umask rides in bits 16..24: the master has its own
constexpr std::uint32_t max_paths = 100000;

std::string one_line(std::string s) {
    for (char& c : s)
        if (c == '\n' || c == '\r') c = ' ';
    return s;
}

// Parses the master's reply; throws tn::Error for "error CODE MESSAGE".
PersistTransferResult parse_reply(const std::string& reply) {
    PersistTransferResult res;
    std::size_t pos = 0;
    while (pos < reply.size()) {
        std::size_t nl = reply.find('\n', pos);
        std::string line = reply.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? reply.size() : nl + 1;
        if (line.rfind("note ", 0) == 0) {
            res.notes.push_back(line.substr(5));
        } else if (line.rfind("ok", 0) == 0) {
            char* end = nullptr;
            res.files = std::strtoull(line.c_str() + std::min<std::size_t>(line.size(), 3), &end, 10);
            res.bytes = std::strtoull(end, nullptr, 10);
            return res;
        } else if (line.rfind("error ", 0) == 0) {
            auto sp = line.find(' ', 6);
            throw Error(static_cast<ExitCode>(std::atoi(line.substr(6, sp - 6).c_str())),
                        sp == std::string::npos ? "persist: master failed" : line.substr(sp + 1));
        }
    }
    throw Error(ExitCode::data, "persist: unexpected reply from the master");
}

}  // namespace

PersistTransferResult persist_transfer(const Target& t, const SshOptions& ssh, int idle_s,
                                       const PersistTransferRequest& req) {
    std::string payload;
    wire::put_str(payload, req.is_put ? "put" : "get");
    wire::put_u32(payload, (req.settings.recursive ? flag_recursive : 0) | (req.settings.resume ? flag_resume : 0) |
                               (req.progress ? flag_progress : 0) | (req.settings.preserve ? flag_preserve : 0) |
                               (req.stream_fd >= 0 ? flag_stream : 0) | ((req.settings.umask & 0777u) << umask_shift));
    wire::put_strs(payload, req.local);
    wire::put_strs(payload, req.remote);
    // Files are safe to send again on a fresh master (temp names, renamed only when whole); a stream is
    // not: the failed try may have read part of our stdin, or written part of the file to our stdout.
    PersistTransferResult res;
    with_master(
        t, ssh, idle_s,
        [&](int sock) {
            if (req.stream_fd >= 0) wire::send_frame(sock, payload, {2, req.stream_fd});
            else
                wire::send_frame(sock, payload, {2});
            res = parse_reply(wire::recv_frame(sock, nullptr));
        },
        [&] { return req.stream_fd < 0; });
    return res;
}

std::string serve_transfer(ssh::Session& session, std::optional<ssh::Sftp>& sftp, bool is_put, wire::Reader& r,
                           std::vector<UniqueFd>& fds, int conn) {
    std::uint32_t flags = r.u32();
    auto local = r.strs(max_paths, "paths");
    auto remote = r.strs(max_paths, "paths");
    bool stream = (flags & flag_stream) != 0;
    if (fds.size() != (stream ? 2u : 1u)) throw Error(ExitCode::data, "persist: wrong descriptors");
    if (local.empty() || remote.empty() || (is_put ? remote.size() != 1 : local.size() != 1))
        throw Error(ExitCode::data, "persist: malformed transfer request");
    std::string reply;
    try {
        if (!sftp) sftp.emplace(session);
        Progress progress((flags & flag_progress) != 0, fds[0].get());
        ssh::TransferEvents ev;
        ev.file_start = [&](const std::string& name, std::uint64_t size) { progress.start_file(name, size); };
        ev.bytes = [&](std::uint64_t n) {
            progress.add(n);
            // The client sends nothing after its request: readable means it closed (Ctrl-C).
            pollfd p{conn, POLLIN, 0};
            if (::poll(&p, 1, 0) > 0) throw Error(ExitCode::io, "persist: the client went away");
        };
        ev.note = [&](const std::string& m) { reply += "note " + one_line(m) + "\n"; };
        ssh::TransferSettings settings{(flags & flag_recursive) != 0, (flags & flag_resume) != 0,
                                       (flags & flag_preserve) != 0, (flags >> umask_shift) & 0777u};
        ssh::Transfer xfer(session, *sftp, settings, ev);
        if (stream && is_put) {
            xfer.put_stream(fds[1].get(), remote.front());
        } else if (stream) {
            xfer.get_stream(remote.front(), fds[1].get());
        } else if (is_put) {
            std::vector<std::filesystem::path> src(local.begin(), local.end());
            xfer.put(src, remote.front());
        } else {
            xfer.get(remote, local.front());
        }
        progress.finish();
        const auto& st = xfer.stats();
        return reply + "ok " + std::to_string(st.files) + " " + std::to_string(st.bytes);
    } catch (const Error& e) {
        sftp.reset();  // replies to pipelined requests may still be on their way: start clean next time
        // A dropped session fails whatever SFTP call came first (stat, write...): say unavailable, so
        // this master ends and the client retries once on a fresh one.
        if (!ssh::session_connected(session)) throw Error(ExitCode::unavailable, e.what());
        throw;
    }
}

}  // namespace tn::exec
