// The file operations through a --persist master: request, reply, and the master's side.
#include "persist_fs.hpp"

#include <cstdlib>

#include "base/error.hpp"
#include "output.hpp"
#include "persist.hpp"
#include "persist_wire.hpp"
#include "ssh/exec.hpp"
#include "ssh/sftp_fs.hpp"

namespace tn::exec {

namespace {

constexpr std::uint32_t flag_long = 1, flag_recursive = 2, flag_parents = 4, flag_json = 8;
constexpr std::uint32_t max_words = 100000;  // the request comes from a local process: still bound it

bool is_fs_status(int code) { return code == 1 || code == 74 || code == 77; }

}  // namespace

void persist_fs(const Target& t, const SshOptions& ssh, int idle_s, const std::string& op, const FsOptions& o,
                bool json, const std::vector<std::string>& plain, const std::vector<std::string>& paths) {
    std::string payload;
    wire::put_str(payload, "fs");
    wire::put_str(payload, op);
    wire::put_u32(payload, (o.long_format ? flag_long : 0) | (o.recursive ? flag_recursive : 0) |
                               (o.parents ? flag_parents : 0) | (json ? flag_json : 0));
    wire::put_str(payload, t.label);
    wire::put_strs(payload, plain);
    wire::put_strs(payload, paths);
    with_master(t, ssh, idle_s, [&](int sock) {
        wire::send_frame(sock, payload, {1});
        auto reply = wire::recv_frame(sock, nullptr);
        if (reply == "ok") return;
        if (reply.rfind("error ", 0) != 0) throw Error(ExitCode::data, "persist: unexpected reply from the master");
        auto sp = reply.find(' ', 6);
        int code = std::atoi(reply.substr(6, sp - 6).c_str());
        std::string msg = sp == std::string::npos ? "persist: master failed" : reply.substr(sp + 1);
        if (is_fs_status(code)) throw ssh::FsError(static_cast<ExitCode>(code), msg);
        throw Error(static_cast<ExitCode>(code), msg);
    });
}

std::string serve_fs(ssh::Session& session, std::optional<ssh::Sftp>& sftp, wire::Reader& r, std::vector<UniqueFd>& fds) {
    std::string op = r.str();
    std::uint32_t flags = r.u32();
    std::string label = r.str();
    auto plain = r.strs(max_words, "paths");
    auto paths = r.strs(max_words, "paths");
    if (fds.size() != 1) throw Error(ExitCode::data, "persist: wrong descriptors");
    if (paths.empty()) throw Error(ExitCode::data, "persist: malformed file operation");
    FsOptions o;
    o.long_format = (flags & flag_long) != 0;
    o.recursive = (flags & flag_recursive) != 0;
    o.parents = (flags & flag_parents) != 0;
    o.symbolic = true;
    int out = fds[0].get();
    try {
        if (!sftp) sftp.emplace(session);
        ssh::RemoteFs fs(session, *sftp);
        run_fs_op(op, o, (flags & flag_json) != 0, label, fs, plain, paths, [out](const std::string& s) {
            if (!write_all(out, s)) throw Error(ExitCode::io, "persist: cannot write the client's output");
        });
        return "ok";
    } catch (const ssh::FsError&) {
        throw;  // the server's answer (missing, permission): the session is fine
    } catch (const Error& e) {
        sftp.reset();
        if (!ssh::session_connected(session)) throw Error(ExitCode::unavailable, e.what());
        throw;
    }
}

}  // namespace tn::exec
