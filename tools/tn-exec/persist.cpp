// --persist client and master: requests over a Unix socket (persist_wire.hpp), with the client's stdin
// and output pipes passed as descriptors so the master never buffers a stream.
#include "persist.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "base/error.hpp"
#include "base/runtime_dir.hpp"
#include "base/spawn.hpp"
#include "base/unique_fd.hpp"
#include "output.hpp"
#include "persist_stale.hpp"
#include "persist_sudo.hpp"
#include "persist_fs.hpp"
#include "persist_transfer.hpp"
#include "persist_wire.hpp"
#include "runner.hpp"
#include "sudo.hpp"
#include "ssh/sftp.hpp"

namespace tn::exec {

namespace {

using wire::put_str;
using wire::put_u32;

std::uint64_t fnv1a(std::string_view s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

std::vector<std::string> ssh_args(const SshOptions& o) {
    std::vector<std::string> a;
    if (o.port) a.insert(a.end(), {"-p", std::to_string(*o.port)});
    if (!o.user.empty()) a.insert(a.end(), {"-l", o.user});
    for (const auto& i : o.identities) a.insert(a.end(), {"-i", i});
    if (!o.ssh_config.empty()) a.insert(a.end(), {"--ssh-config", o.ssh_config});
    if (!o.known_hosts.empty()) a.insert(a.end(), {"--known-hosts", o.known_hosts});
    a.insert(a.end(), {"--connect-timeout", std::to_string(o.connect_timeout)});
    if (o.accept_new) a.emplace_back("--accept-new");
    if (!o.jump.empty()) a.insert(a.end(), {"-J", o.jump});
    return a;
}

// Starts `tn-exec __master` detached (own session, stdio on /dev/null) and waits for its verdict.
void start_master(const Target& t, const SshOptions& ssh, int idle_s, const std::filesystem::path& sock) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw Error(ExitCode::io, std::string("pipe: ") + std::strerror(errno));
    UniqueFd rd(p[0]), wr(p[1]);
    std::vector<std::string> args = {"tn-exec", "__master", "--socket", sock.string(), "--idle", std::to_string(idle_s),
                                     "--ready-fd", "3"};
    for (auto& a : ssh_args(ssh)) args.push_back(a);
    // A password goes to the master through a pipe on fd 4, never in its argv or environment. It is
    // asked for now (askpass included): the master cannot ask, its stdio is /dev/null.
    UniqueFd pw_rd;
    if (t.password) {
        int q[2];
        if (::pipe2(q, O_CLOEXEC) != 0) throw Error(ExitCode::io, std::string("pipe: ") + std::strerror(errno));
        pw_rd = UniqueFd(q[0]);
        UniqueFd pw_wr(q[1]);
        {
            auto pw = t.password->get(t.label + "'s password: ");
            std::string line = pw->expose() + "\n";  // fits the pipe buffer: at most 4 KiB
            bool ok = write_all(pw_wr.get(), line);
            Secret wipe(std::move(line));
            if (!ok) throw Error(ExitCode::io, std::string("persist: cannot pass the password: ") + std::strerror(errno));
        }
        args.insert(args.end(), {"--password-fd", "4"});
    }
    args.push_back(t.label);
    // /proc/self/exe: this very binary, even if a package upgrade has replaced the file since. The seam
    // starts it with default signals and an empty mask (the caller blocks SIGINT/SIGTERM for its
    // watcher thread), in a new session, and with none of our descriptors but these.
    proc::Command cmd{.argv = args, .exe = "/proc/self/exe", .own_session = true, .in = proc::Input::null,
                      .out = proc::Output::null, .err = proc::Output::null, .pass_fds = {{3, wr.get()}}};
    if (pw_rd) cmd.pass_fds.emplace_back(4, pw_rd.get());
    try {
        proc::spawn(cmd);  // not reaped: the master outlives us (a zombie only until we exit)
    } catch (const Error& e) {
        throw Error(ExitCode::io, std::string("persist: cannot start the master: ") + e.what());
    }
    wr.reset();
    std::string verdict;
    pollfd pfd{rd.get(), POLLIN, 0};
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(ssh.connect_timeout + 30);
    for (char buf[512]; verdict.size() < 4096;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0 || ::poll(&pfd, 1, static_cast<int>(left)) <= 0) break;
        ssize_t n = ::read(rd.get(), buf, sizeof buf);
        if (n <= 0) break;
        verdict.append(buf, static_cast<std::size_t>(n));
    }
    if (verdict.rfind("ok", 0) == 0) return;
    if (verdict.rfind("error ", 0) == 0) {
        auto sp = verdict.find(' ', 6);
        int code = std::atoi(verdict.substr(6, sp - 6).c_str());
        std::string msg = sp == std::string::npos ? "" : verdict.substr(sp + 1);
        while (!msg.empty() && msg.back() == '\n') msg.pop_back();
        if (code == to_int(ExitCode::no_perm) && msg.rfind("password refused", 0) == 0) throw PasswordError(msg);
        throw Error(static_cast<ExitCode>(code), msg);
    }
    throw Error(ExitCode::unavailable, "persist: the master for " + t.label + " did not start");
}

std::string result_line(const ssh::ExecResult& r) {
    if (r.timed_out) return "timeout";
    if (!r.signal.empty()) return "signal " + r.signal;
    if (r.exit_status) return "exit " + std::to_string(*r.exit_status);
    return "exit 255";
}

}  // namespace

std::filesystem::path persist_socket(const Target& t) {
    const auto& c = t.client;
    std::string key = c.user + "\n" + c.host + "\n" + (c.port ? std::to_string(*c.port) : "") + "\n" +
                      c.ssh_config_path().string() + "\n" + c.known_hosts_path().string();
    for (const auto& i : c.identities) key += "\n" + i.string();
    if (t.jump) key += "\njump " + t.jump_label;  // a master through a jump host is another connection
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(key)));
    return state_dir_path() / ("exec-" + std::string(hex) + ".sock");
}

UniqueFd connect_master(const Target& t, const SshOptions& ssh, int idle_s, const std::filesystem::path& sock_path,
                        bool fresh) {
    UniqueFd sock;
    if (!fresh) sock = wire::try_connect(sock_path);
    if (sock) return sock;
    ensure_state_dir();
    // One starter at a time, so parallel first calls share one master.
    std::optional<FileLock> lock;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(ssh.connect_timeout + 30);
    while (!(lock = FileLock::try_acquire(sock_path.string() + ".lock"))) {
        if (std::chrono::steady_clock::now() > deadline) throw Error(ExitCode::temp_fail, "persist: lock busy");
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!fresh) sock = wire::try_connect(sock_path);
    if (sock) return sock;
    ::unlink(sock_path.c_str());  // a dead (or dying) master's socket
    start_master(t, ssh, idle_s, sock_path);
    sock = wire::try_connect(sock_path);
    if (!sock) throw Error(ExitCode::unavailable, "persist: cannot reach the master at " + sock_path.string());
    return sock;
}

namespace {

int exchange(int sock_fd, const ssh::ExecRequest& req, const ssh::ExecSinks& sinks, const PersistSudo* sudo,
             bool& got_output);

}  // namespace

void with_master(const Target& t, const SshOptions& ssh, int idle_s, const std::function<void(int sock)>& exchange,
                 const std::function<bool()>& may_retry) {
    auto sock_path = persist_socket(t);
    bool fresh = false, replaced = false;
    for (;;) {
        UniqueFd sock;
        try {
            sock = connect_master(t, ssh, idle_s, sock_path, fresh);
            exchange(sock.get());
            return;
        } catch (const wire::VersionMismatch& e) {
            if (replaced) throw;  // our pipes and stdin are untouched: the request was not read
            replace_stale_master(sock_path, sock.get(), e);
            replaced = true;
        } catch (const Error& e) {
            if (e.code() != ExitCode::unavailable || fresh || (may_retry && !may_retry())) throw;
            fresh = true;
        }
    }
}

int persist_run(const Target& t, const SshOptions& ssh, int idle_s, const ssh::ExecRequest& req,
                const ssh::ExecSinks& sinks, const PersistSudo* sudo) {
    bool got_output = false;
    int code = 0;
    with_master(
        t, ssh, idle_s, [&](int sock) { code = exchange(sock, req, sinks, sudo, got_output); },
        [&] { return !got_output && req.stdin_fd < 0; });
    return code;
}

namespace {

int exchange(int sock_fd, const ssh::ExecRequest& req, const ssh::ExecSinks& sinks, const PersistSudo* sudo,
             bool& got_output) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) throw Error(ExitCode::io, "pipe failed");
    UniqueFd out_r(out[0]), out_w(out[1]), err_r(err[0]), err_w(err[1]);

    got_output = false;
    std::string payload;
    put_str(payload, "run");
    put_str(payload, req.command);
    put_str(payload, req.cwd);
    put_str(payload, req.timeout ? std::to_string(req.timeout->count()) : "");
    put_str(payload, req.stdin_fd >= 0 ? "1" : "0");
    put_u32(payload, static_cast<std::uint32_t>(req.env.size()));
    for (const auto& [k, v] : req.env) {
        put_str(payload, k);
        put_str(payload, v);
    }
    put_str(payload, sudo ? sudo->token : "");
    put_str(payload, sudo && sudo->password ? "1" : "0");
    // The interrupt eventfd goes along, so a Ctrl-C here reaches the remote command through the master.
    UniqueFd never;
    int intr = req.interrupt_fd;
    if (intr < 0) {
        never = UniqueFd(::eventfd(0, EFD_CLOEXEC));
        intr = never.get();
    }
    std::vector<int> fds = {out_w.get(), err_w.get(), intr};
    if (req.stdin_fd >= 0) fds.push_back(req.stdin_fd);
    wire::send_frame(sock_fd, payload, fds);
    out_w.reset();
    err_w.reset();

    // Stream both pipes until the master closes them (the command ended), then read the verdict.
    // With --sudo the socket is watched too: the master asks there for the password when sudo
    // prompts; any other frame is the verdict, which may come before we saw the pipes' ends.
    char buf[65536];
    pollfd p[3] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}, {sudo ? sock_fd : -1, POLLIN, 0}};
    int open_pipes = 2;
    std::optional<std::string> verdict;
    while (open_pipes > 0) {
        if (::poll(p, 3, -1) < 0) {
            if (errno == EINTR) continue;
            throw Error(ExitCode::io, std::string("poll: ") + std::strerror(errno));
        }
        if (p[2].fd >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
            std::string frame = wire::recv_frame(sock_fd, nullptr);
            if (!answer_password_request(sock_fd, frame, sudo->password.get())) {
                verdict = std::move(frame);
                p[2].fd = -1;
            }
        }
        for (int i = 0; i < 2; ++i) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t n = ::read(p[i].fd, buf, sizeof buf);
            if (n > 0) {
                got_output = true;
                (i == 0 ? sinks.out : sinks.err)(std::string_view(buf, static_cast<std::size_t>(n)));
            } else if (n == 0 || errno != EINTR) {
                p[i].fd = -1;
                --open_pipes;
            }
        }
    }
    std::string line = verdict ? *verdict : wire::recv_frame(sock_fd, nullptr);
    if (line.rfind("exit ", 0) == 0) return std::atoi(line.c_str() + 5) & 0xff;
    if (line.rfind("signal ", 0) == 0) {
        ssh::ExecResult r;
        r.signal = line.substr(7);
        return ssh::exit_code_for(r);
    }
    if (line == "timeout") return 124;
    if (line.rfind("error ", 0) == 0) {
        auto sp = line.find(' ', 6);
        auto code = static_cast<ExitCode>(std::atoi(line.substr(6, sp - 6).c_str()));
        std::string why = sp == std::string::npos ? "persist: master failed" : line.substr(sp + 1);
        if (code == ExitCode::no_perm) throw PasswordError(why);  // 77 as without --persist
        throw Error(code, why);
    }
    throw Error(ExitCode::data, "persist: unexpected reply from the master");
}

}  // namespace

namespace {

// A "run" request: the command on the channel opened ahead, streamed into the client's pipes.
// With --sudo (a token), sudo's prompt gate runs here, the password asked of the client on `conn`.
std::string serve_run(ssh::Session& session, ssh::ChannelPtr spare, wire::Reader& r, std::vector<UniqueFd>& fds,
                      int conn) {
    ssh::ExecRequest req;
    req.command = r.str();
    req.cwd = r.str();
    std::string t = r.str();
    if (!t.empty()) req.timeout = std::chrono::milliseconds(std::atoll(t.c_str()));
    bool has_stdin = r.str() == "1";
    std::uint32_t nenv = r.u32();
    if (nenv > 1000) throw Error(ExitCode::data, "persist: too many variables");
    for (std::uint32_t i = 0; i < nenv; ++i) {
        auto k = r.str();
        req.env.emplace_back(k, r.str());
    }
    std::string sudo_token = r.str();
    bool can_ask = r.str() == "1";
    if (fds.size() != (has_stdin ? 4u : 3u)) throw Error(ExitCode::data, "persist: wrong descriptors");
    req.interrupt_fd = fds[2].get();
    req.interrupt_signal = [] { return std::string("INT"); };
    req.stdin_fd = has_stdin ? fds[3].get() : -1;
    int ofd = fds[0].get(), efd = fds[1].get();
    // A client that went away (EPIPE) ends the command, as it would without the master.
    auto sink = [](int fd) {
        return [fd](std::string_view d) {
            if (!write_all(fd, d)) throw Error(ExitCode::io, "persist: the client went away");
        };
    };
    std::optional<SudoGate> gate;
    if (!sudo_token.empty()) {
        SudoGate::PasswordFn pw;
        if (can_ask)
            pw = [&] {
                return ask_client_for_password(conn, "[sudo] password for " + session.user() + "@" + session.host() + ": ");
            };
        req.preamble = &gate.emplace(sudo_token, std::move(pw));
    }
    auto res = ssh::run_command(session, std::move(spare), req, {sink(ofd), sink(efd)});
    fds.clear();  // EOF on the client's pipes before the verdict
    if (gate && !gate->started() && res.exit_status && !res.timed_out && res.signal.empty()) {
        auto f = sudo_failure(*gate, *res.exit_status, session.endpoint(), can_ask);
        auto code = f.code == to_int(ExitCode::no_perm) ? ExitCode::no_perm : ExitCode::unavailable;
        return "error " + std::to_string(to_int(code)) + " " + f.message;
    }
    return result_line(res);
}

// The master's socket, private to this user (umask 077 while it is bound), replacing a stale one.
UniqueFd listen_unix(const std::string& socket_path) {
    UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof a.sun_path) throw Error(ExitCode::usage, "socket path too long");
    std::strcpy(a.sun_path, socket_path.c_str());
    ::unlink(socket_path.c_str());
    mode_t old = ::umask(077);  // the socket is as private as the session behind it
    int rc = ::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::umask(old);
    if (rc != 0 || ::listen(listener.get(), 64) != 0)
        throw Error(ExitCode::io, "persist: cannot listen on " + socket_path + ": " + std::strerror(errno));
    return listener;
}

// One client's request on the master's session: the reply line to send back. `alive` turns false
// when the session is gone, so the master exits and the next call starts a fresh one.
std::string serve_request(ssh::Session& session, ssh::ChannelPtr& spare, std::optional<ssh::Sftp>& sftp, int conn,
                          bool& alive) {
    try {
        std::vector<UniqueFd> fds;
        std::string payload = wire::recv_frame(conn, &fds);
        wire::Reader r{payload};
        std::string kind = r.str();
        if (kind == "run") return serve_run(session, std::move(spare), r, fds, conn);
        if (kind == "put" || kind == "get") return serve_transfer(session, sftp, kind == "put", r, fds, conn);
        if (kind == "fs") return serve_fs(session, sftp, r, fds);
        throw Error(ExitCode::data, "persist: unknown request '" + kind + "'");
    } catch (const Error& e) {
        alive = e.code() != ExitCode::unavailable;  // the session is gone: let the next call start afresh
        return "error " + std::to_string(to_int(e.code())) + " " + e.what();
    }
}

}  // namespace

int master_main(const std::string& host_spec, const SshOptions& ssh, const std::string& socket_path, int idle_s,
                int ready_fd) {
    UniqueFd ready(ready_fd);
    auto report = [&](const std::string& line) {
        write_all(ready.get(), line);
        ready.reset();
    };
    std::optional<ssh::Session> session;
    UniqueFd listener;
    try {
        session.emplace(open_session(make_target(host_spec, ssh)));
        listener = listen_unix(socket_path);
    } catch (const Error& e) {
        report("error " + std::to_string(to_int(e.code())) + " " + e.what() + "\n");
        return to_int(e.code());
    }
    std::string pid_path = socket_path + ".pid";
    write_all(UniqueFd(::open(pid_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)).get(),
              std::to_string(::getpid()) + "\n");
    report("ok\n");

    // A session channel kept open ahead of the next request (declared after the session, so it is
    // freed first): a request then pays only for exec, not for the channel-open round trip as well.
    ssh::ChannelPtr spare;
    std::optional<ssh::Sftp> sftp;  // opened by the first put/get, kept for the next ones
    bool alive = true;
    auto reopen_spare = [&] {
        try {
            spare = ssh::open_exec_channel(*session);  // null if refused: the request will say why
        } catch (const Error&) {
            alive = false;  // the connection is gone: let the next call start a fresh master
        }
    };
    reopen_spare();
    while (alive) {
        pollfd pfd{listener.get(), POLLIN, 0};
        int rc = ::poll(&pfd, 1, idle_s * 1000);
        if (rc == 0) break;  // idle long enough
        if (rc < 0) {
            if (errno == EINTR) continue;
            break;
        }
        UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!conn) continue;
        std::string reply = serve_request(*session, spare, sftp, conn.get(), alive);
        try {
            wire::send_frame(conn.get(), reply, {});
        } catch (const Error&) {
            // The client went away; nothing to tell.
        }
        conn.reset();
        if (alive) reopen_spare();  // after the reply: the client is not kept waiting for it
    }
    ::unlink(socket_path.c_str());
    ::unlink(pid_path.c_str());
    return 0;
}

}  // namespace tn::exec
