// tn-exec put / get: argument rules (scp's host:PATH forms, -H fan-out) around ssh::Transfer, on a
// session of its own or through a --persist master.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <chrono>
#include <iostream>

#include "base/error.hpp"
#include "base/unique_fd.hpp"
#include "persist_transfer.hpp"
#include "progress.hpp"
#include "runner.hpp"
#include "ssh/sftp.hpp"
#include "ssh/transfer.hpp"

namespace fs = std::filesystem;

namespace tn::exec {

namespace {

struct Job {
    std::vector<fs::path> local;       // put sources, or the get destination (one)
    std::vector<std::string> remote;   // get sources, or the put destination (one)
    bool stream = false;               // put - (stdin) or get ... - (stdout)
    int spool = -1;                    // put - with -H: stdin, read whole into an unlinked temp file
};

// `put - HOST:PATH` and `get HOST:PATH -`: one file, this process's own stdin/stdout. With -H, put -
// sends the same (spooled) bytes to every host and get - prints each host's file as its output lines.
void check_stream(const FanOut& fan, const TransferOptions& o, const Job& job, const char* what) {
    if (fan.persist > 0 && !fan.host_specs.empty()) throw ParseError(std::string(what) + " -H does not work with --persist");
    if (o.resume || o.recursive) throw ParseError(std::string(what) + " takes neither --resume nor -r");
    if (job.remote.size() != 1 || job.local.size() != 1) throw ParseError(std::string(what) + " takes one file");
}

// put - -H: stdin into an unlinked file in $TMPDIR (or /tmp), so every host gets the same bytes
// without holding them in memory. Throws tn::Error(io) when stdin or the file fails.
UniqueFd spool_stdin() {
    const char* tmp = std::getenv("TMPDIR");
    std::string dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
    UniqueFd fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!fd) throw Error(ExitCode::io, "put - -H: cannot make a temp file in " + dir + ": " + std::strerror(errno));
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(ExitCode::io, std::string("put -: cannot read stdin: ") + std::strerror(errno));
        if (n == 0) break;
        if (!write_all(fd.get(), std::string_view(buf, static_cast<std::size_t>(n))))
            throw Error(ExitCode::io, "put - -H: cannot write the temp file in " + dir + ": " + std::strerror(errno));
    }
    return fd;
}

// Read once, before any thread: umask() can only be read by setting it.
std::uint32_t current_umask() {
    mode_t u = ::umask(077);
    ::umask(u);
    return u;
}

int transfer_all(const std::vector<Target>& targets, const SshOptions& ssh, const FanOut& fan,
                 const TransferOptions& o, const log::Logger& log, bool is_put, const Job& job) {
    bool fanned = !fan.host_specs.empty();
    Output out(fan.json ? OutputMode::json : fanned ? OutputMode::prefixed : OutputMode::raw);
    bool bar = o.progress && !fanned && !fan.json;
    ssh::TransferSettings settings{o.recursive, o.resume, o.preserve, current_umask()};
    return for_each_host(targets, fan.parallel, out, log, [&](const Target& t, HostOutput& host_out) {
        fs::path dest;
        if (!is_put) {
            dest = job.local.front();
            if (fanned && !job.stream) {
                // -H into one place: each host gets its own folder, named as typed (also for one host).
                dest /= t.label;
                std::error_code ec;
                fs::create_directories(dest, ec);
                if (ec) throw Error(ExitCode::io, "cannot create " + dest.string() + ": " + ec.message());
            }
        }
        auto start = std::chrono::steady_clock::now();
        auto done = [&](std::uint64_t files, std::uint64_t bytes) {
            double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            log.debug(t.label, ": ", is_put ? "put " : "got ", files, " files, ", format_bytes(static_cast<double>(bytes)),
                      " in ", secs, " s");
            return 0;
        };
        if (fan.persist > 0) {
            // The master has its own working directory: it gets absolute local paths.
            PersistTransferRequest rq{is_put, settings, bar, {}, job.remote};
            if (job.stream) {
                // The master reads our stdin or writes our stdout itself (the descriptor rides along).
                rq.local = {"-"};
                rq.stream_fd = is_put ? STDIN_FILENO : STDOUT_FILENO;
            } else if (is_put) {
                for (const auto& l : job.local) rq.local.push_back(fs::absolute(l).string());
            } else {
                rq.local.push_back(fs::absolute(dest).string());
            }
            auto res = persist_transfer(t, ssh, fan.persist, rq);
            for (const auto& n : res.notes) log.info(t.label, ": ", n);
            return done(res.files, res.bytes);
        }
        auto session = open_session(t);
        ssh::Sftp sftp(session);
        Progress progress(bar);
        ssh::TransferEvents ev;
        ev.file_start = [&](const std::string& name, std::uint64_t size) { progress.start_file(name, size); };
        ev.bytes = [&](std::uint64_t n) { progress.add(n); };
        ev.note = [&](const std::string& m) { log.info(t.label, ": ", m); };
        ssh::Transfer xfer(session, sftp, settings, ev);
        if (job.stream && is_put && job.spool >= 0) {
            // Each host reads the spool from its start: a file description of its own, not a dup.
            UniqueFd in(::open(("/proc/self/fd/" + std::to_string(job.spool)).c_str(), O_RDONLY | O_CLOEXEC));
            if (!in) throw Error(ExitCode::io, std::string("cannot reopen the spooled stdin: ") + std::strerror(errno));
            xfer.put_stream(in.get(), job.remote.front());
        } else if (job.stream && is_put) {
            xfer.put_stream(STDIN_FILENO, job.remote.front());
        } else if (job.stream && fanned) {  // framed as run frames output: "host: " lines or JSON records
            xfer.get_to(job.remote.front(), [&](std::string_view d) { host_out.out(d); });
        } else if (job.stream) {
            xfer.get_stream(job.remote.front(), STDOUT_FILENO);
        } else if (is_put) {
            xfer.put(job.local, job.remote.front());
        } else {
            xfer.get(job.remote, dest);
        }
        progress.finish();
        return done(xfer.stats().files, xfer.stats().bytes);
    });
}

}  // namespace

int put_main(const SshOptions& ssh, const FanOut& fan, const TransferOptions& o, const log::Logger& log) {
    if (o.paths.size() < 2) throw ParseError("put needs LOCAL... and [user@]host:REMOTE");
    Job job;
    for (std::size_t i = 0; i + 1 < o.paths.size(); ++i) job.local.emplace_back(o.paths[i]);
    const auto& dest = o.paths.back();
    std::vector<Target> targets;
    if (fan.host_specs.empty()) {
        auto r = split_remote(dest);
        if (!r) throw ParseError("put: the last argument must be [user@]host:REMOTE, got '" + dest + "'");
        targets.push_back(make_target(r->host, ssh));
        job.remote.push_back(r->path);
    } else {
        targets = fan_targets(expand_hosts(fan.host_specs, std::cin), ssh);
        job.remote.push_back(dest);
    }
    for (const auto& l : job.local)
        if (split_remote(l.string()) && fan.host_specs.empty())
            throw ParseError("put: sources must be local paths, got '" + l.string() + "' (use ./ for a local name with ':')");
    job.stream = job.local.size() == 1 && job.local.front() == "-";
    // With --password-stdin the password line was read byte by byte: the file is what follows it.
    if (job.stream) check_stream(fan, o, job, "put -");
    for (const auto& h : fan.host_specs)
        if (job.stream && h == "@-") throw ParseError("put - and -H @- both want stdin; use -H @FILE");
    UniqueFd spool;
    if (job.stream && !fan.host_specs.empty()) {
        spool = spool_stdin();  // whole before any host is touched: a failed read writes nothing anywhere
        job.spool = spool.get();
    }
    return transfer_all(targets, ssh, fan, o, log, true, job);
}

int get_main(const SshOptions& ssh, const FanOut& fan, const TransferOptions& o, const log::Logger& log) {
    if (o.paths.size() < 2) throw ParseError("get needs [user@]host:REMOTE... and LOCAL");
    Job job;
    job.local.emplace_back(o.paths.back());
    std::vector<Target> targets;
    if (fan.host_specs.empty()) {
        std::string host;
        for (std::size_t i = 0; i + 1 < o.paths.size(); ++i) {
            auto r = split_remote(o.paths[i]);
            if (!r) throw ParseError("get: sources must be [user@]host:REMOTE, got '" + o.paths[i] + "'");
            if (!host.empty() && r->host != host) throw ParseError("get: all sources must name the same host (or use -H)");
            host = r->host;
            job.remote.push_back(r->path);
        }
        targets.push_back(make_target(host, ssh));
    } else {
        targets = fan_targets(expand_hosts(fan.host_specs, std::cin), ssh);
        for (std::size_t i = 0; i + 1 < o.paths.size(); ++i) job.remote.push_back(o.paths[i]);
    }
    job.stream = job.local.front() == "-";
    if (job.stream) check_stream(fan, o, job, "get ... -");
    return transfer_all(targets, ssh, fan, o, log, false, job);
}

}  // namespace tn::exec
