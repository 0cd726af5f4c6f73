// tn-exec serve --stdio: one session (and SFTP channel) per host, opened on first use and kept.
#include "serve.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <exception>
#include <map>
#include <memory>
#include <tuple>
#include <utility>

#include "base/error.hpp"
#include "base/strings.hpp"
#include "base/unique_fd.hpp"
#include "output.hpp"
#include "runner.hpp"
#include "serve_proto.hpp"
#include "sudo.hpp"
#include "ssh/exec.hpp"
#include "ssh/sftp.hpp"
#include "ssh/sftp_fs.hpp"
#include "ssh/transfer.hpp"

namespace tn::exec {

namespace {

constexpr std::size_t max_get = 64 * 1024 * 1024;  // a get answers in one line: bound it
constexpr std::uint64_t max_put_bytes = 64 * 1024 * 1024;  // a put's raw data is held in memory: bound it

// The exit code and message a failed request answers with: one ladder for parsing and running.
std::pair<int, std::string> failure_of(std::exception_ptr failure) {
    try {
        std::rethrow_exception(failure);
    } catch (const ssh::FsError& e) {
        return {to_int(e.code()), e.what()};
    } catch (const PasswordError& e) {
        return {to_int(e.code()), e.what()};
    } catch (const ParseError& e) {
        return {to_int(ExitCode::usage), e.what()};
    } catch (const Error& e) {
        return {e.code() == ExitCode::data ? to_int(ExitCode::data) : 255, e.what()};
    } catch (const std::exception& e) {
        return {to_int(ExitCode::usage), std::string("bad request: ") + e.what()};
    }
}

UniqueFd memfd(const std::string& data) {
    UniqueFd fd(::memfd_create("tn-exec-serve", MFD_CLOEXEC));
    if (!fd) throw Error(ExitCode::io, "memfd_create failed");
    if (!data.empty() && !write_all(fd.get(), data)) throw Error(ExitCode::io, "cannot buffer data");
    ::lseek(fd.get(), 0, SEEK_SET);
    return fd;
}

struct Conn {
    std::unique_ptr<ssh::Session> session;
    std::unique_ptr<ssh::Sftp> sftp;
};

class Server {
public:
    Server(const SshOptions& ssh) : ssh_(ssh) {}
    // One request line; a put with "data_bytes" is answered once `lines` has taken its raw data.
    void handle(const std::string& line, LineSplitter& lines);
    void reject(const std::string& error) { emit("{\"id\":null,\"exit\":65,\"error\":" + json_quote(error) + "}"); }
    // The input ended inside a put's raw data: that put is answered as bad data.
    void cut_short(std::uint64_t missing);

private:
    void emit(std::string obj) {
        obj += '\n';  // in place: a get's answer is one line of up to 90 MB
        if (!write_all(STDOUT_FILENO, obj)) throw Error(ExitCode::io, "serve: cannot write standard output");
    }
    Conn& conn(const std::string& host);
    std::string dispatch(const ServeRequest& rq, int& code);
    // Runs a parsed request (unless `error` says it failed already) and writes its result.
    void answer(const ServeRequest& rq, int code, std::string error);
    std::string entries_json(const std::vector<ssh::RemoteEntry>& es);

    const SshOptions& ssh_;
    std::map<std::string, Conn> conns_;
    std::string raw_out_;     // a "raw" get's bytes, written after its result line
    std::string pending_id_;  // the put whose raw data is still coming in
};

Conn& Server::conn(const std::string& host) {
    if (host.empty()) throw ParseError("request names no host");
    auto it = conns_.find(host);
    if (it != conns_.end() && ssh::session_connected(*it->second.session)) return it->second;
    Conn c;
    c.session = std::make_unique<ssh::Session>(open_session(make_target(host, ssh_)));
    c.sftp = std::make_unique<ssh::Sftp>(*c.session);
    return conns_[host] = std::move(c);
}

std::string Server::entries_json(const std::vector<ssh::RemoteEntry>& es) {
    std::string j = "[";
    for (const auto& e : es) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", e.mode);
        if (j.size() > 1) j += ",";
        j += "{\"path\":" + json_quote(e.path) + ",\"name\":" + json_quote(e.name) + ",\"type\":\"" +
             std::string(e.type == 'f' ? "file" : e.type == 'd' ? "dir" : e.type == 'l' ? "link" : "other") +
             "\",\"mode\":\"" + mode + "\",\"size\":" + std::to_string(e.size) + ",\"mtime\":" + std::to_string(e.mtime) +
             (e.link_target ? ",\"target\":" + json_quote(*e.link_target) : std::string()) + "}";
    }
    return j + "]";
}

// The result's extra fields (",\"k\":v..."), with code set to the request's exit status.
std::string Server::dispatch(const ServeRequest& rq, int& code) {
    const auto& op = rq.op;
    const auto& path = rq.path;
    code = 0;
    if (op == "close") {
        conns_.erase(rq.host);
        return "";
    }
    auto& c = conn(rq.host);
    if (op == "open") return ",\"endpoint\":" + json_quote(c.session->endpoint());
    if (op == "run") {
        ssh::ExecRequest req;
        req.command = rq.command;
        req.cwd = rq.cwd;
        std::optional<SudoGate> gate;
        if (rq.sudo) {  // as run --sudo: cwd inside sudo's shell, the prompt answered from the password source
            auto token = sudo_token();
            req.command = sudo_command(ssh::compose_command(req, {}), *rq.sudo, token, ssh_.password != nullptr);
            req.cwd.clear();
            SudoGate::PasswordFn pw;
            if (ssh_.password)
                pw = [&] { return ssh_.password->get("[sudo] password for " + c.session->endpoint() + ": "); };
            req.preamble = &gate.emplace(token, std::move(pw));
        }
        if (rq.timeout) req.timeout = std::chrono::milliseconds(static_cast<long long>(*rq.timeout * 1000));
        UniqueFd in;
        if (rq.stdin_data) in = memfd(*rq.stdin_data);
        req.stdin_fd = in ? in.get() : -1;
        auto event = [&](const char* stream) {
            return [this, &rq, stream](std::string_view d) {
                emit("{\"id\":" + rq.id + ",\"event\":\"" + stream + "\",\"data\":\"" + b64_encode(d) + "\"}");
            };
        };
        auto r = ssh::run_command(*c.session, req, {event("stdout"), event("stderr")});
        if (gate && !gate->started() && r.exit_status && !r.timed_out && r.signal.empty()) {
            auto f = sudo_failure(*gate, *r.exit_status, c.session->endpoint(), ssh_.password != nullptr);
            if (f.code == to_int(ExitCode::no_perm)) throw PasswordError(f.message);
            throw Error(ExitCode::unavailable, f.message);
        }
        code = ssh::exit_code_for(r);
        return r.signal.empty() ? "" : ",\"signal\":" + json_quote(r.signal);
    }
    ssh::TransferSettings settings;
    ssh::Transfer xfer(*c.session, *c.sftp, settings, {});
    ssh::RemoteFs fs(*c.session, *c.sftp);
    if (op == "put") {
        xfer.put_data(rq.data, path);
        return ",\"bytes\":" + std::to_string(xfer.stats().bytes);
    }
    if (op == "get") {
        // A missing file is 1 and a forbidden one 77, as for every file op.
        if (rq.raw) {
            raw_out_ = xfer.get_data(path, max_get);
            return ",\"data_bytes\":" + std::to_string(raw_out_.size());
        }
        std::string data = b64_encode(xfer.get_data(path, max_get));
        std::string extra;
        extra.reserve(data.size() + 16);
        extra += ",\"data\":\"";
        extra += data;
        extra += '"';
        return extra;
    }
    if (op == "ls") return ",\"entries\":" + entries_json(fs.list(path, rq.recursive));
    if (op == "stat") return ",\"entries\":" + entries_json({fs.stat(path)});
    if (op == "mkdir") return fs.mkdir(path, rq.parents), "";
    if (op == "rm") return fs.remove(path, rq.recursive), "";
    if (op == "mv") return fs.rename(path, rq.to), "";
    if (op == "chmod") return fs.chmod(path, rq.mode), "";
    auto s = fs.df(path);  // parse_request lets only known ops through: df is the last
    return ",\"size\":" + std::to_string(s.blocks * s.block_size) + ",\"avail\":" + std::to_string(s.blocks_avail * s.block_size);
}

void Server::handle(const std::string& line, LineSplitter& lines) {
    ServeRequest rq;
    int code = 0;
    std::string error;
    try {
        parse_request(line, rq);
    } catch (const std::exception&) {
        std::tie(code, error) = failure_of(std::current_exception());
    }
    if (!rq.data_bytes) return answer(rq, code, std::move(error));
    // The raw data first, even for a request that failed: the next line starts after it.
    pending_id_ = rq.id;
    lines.take_raw(*rq.data_bytes, max_put_bytes, [this, rq = std::move(rq), code, error](std::string&& data, bool skipped) mutable {
        pending_id_.clear();
        rq.data = std::move(data);
        if (skipped && error.empty())
            code = to_int(ExitCode::data), error = "put: data_bytes over " + std::to_string(max_put_bytes >> 20) + " MiB; skipped";
        answer(rq, code, std::move(error));
    });
}

void Server::cut_short(std::uint64_t missing) {
    emit("{\"id\":" + pending_id_ + ",\"exit\":65,\"error\":" +
         json_quote("put: input ended " + std::to_string(missing) + " bytes short of data_bytes; nothing written") + "}");
}

void Server::answer(const ServeRequest& rq, int code, std::string error) {
    std::string extra;
    raw_out_.clear();
    if (error.empty()) {
        try {
            extra = dispatch(rq, code);
        } catch (const std::exception&) {
            std::tie(code, error) = failure_of(std::current_exception());
        }
    }
    if (!error.empty()) error = ",\"error\":" + json_quote_text(error), raw_out_.clear();
    std::string obj;
    obj.reserve(extra.size() + error.size() + rq.id.size() + 32);  // one copy of a get's data, not four
    obj += "{\"id\":";
    obj += rq.id;
    obj += ",\"exit\":";
    obj += std::to_string(code);
    obj += extra;
    obj += error;
    obj += '}';
    emit(std::move(obj));
    if (!raw_out_.empty() && !write_all(STDOUT_FILENO, raw_out_)) throw Error(ExitCode::io, "serve: cannot write standard output");
}

}  // namespace

int serve_main(const SshOptions& ssh, const log::Logger& log) {
    // A warm serve process handles lines of megabytes again and again: keep what it frees in the heap
    // instead of giving it back to the kernel and faulting it in anew for the next request (page faults
    // were a third of a 1 MiB put+get's CPU). At most 64 MiB of free heap stays resident meanwhile.
    ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
    ::mallopt(M_TRIM_THRESHOLD, 64 << 20);
    // A 1 MiB put or get is a 1.4 MB line: through 64 KiB pipes that is some twenty wake-ups of each
    // side, each a scheduling delay on a busy machine. 1 MiB pipes (the default pipe-max-size) cross it
    // in two. Not a pipe, or not allowed: nothing changes.
    for (int fd : {STDIN_FILENO, STDOUT_FILENO}) ::fcntl(fd, F_SETPIPE_SZ, 1 << 20);
    Server server(ssh);
    LineSplitter lines(serve_max_line);
    auto on_line = [&](const std::string& line) { server.handle(line, lines); };
    auto on_too_long = [&] {
        log.warn("serve: skipped a request line longer than ", serve_max_line, " bytes");
        server.reject("request line longer than " + std::to_string(serve_max_line) + " bytes; skipped");
    };
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(ExitCode::io, "serve: cannot read standard input");
        if (n == 0) break;
        lines.feed(std::string_view(buf, static_cast<std::size_t>(n)), on_line, on_too_long);
    }
    lines.finish(on_line);
    if (lines.raw_missing() > 0) server.cut_short(lines.raw_missing());
    return 0;
}

}  // namespace tn::exec
