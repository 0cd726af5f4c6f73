// Transfer's streams and in-memory data: `put -`, `get -` and serve --stdio's put and get. These speak
// SftpWire's packets to send control requests together: the target's stat with the temp file's open,
// the mode and close behind the last write, the close behind the last read. A put of a small file then
// costs three round trips besides its writes (libssh's calls took six), a get two (four).
#include <fcntl.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>

#include "base/error.hpp"
#include "ssh/remote_path.hpp"
#include "ssh/session.hpp"
#include "ssh/sftp.hpp"
#include "ssh/sftp_fs.hpp"
#include "ssh/sftp_pipe.hpp"
#include "ssh/sftp_wire.hpp"
#include "ssh/transfer.hpp"

namespace tn::ssh {

namespace {

// Fills buf from a pipe or file until it is full or at EOF: a pipe gives 64 KiB at a time, and each
// short read would otherwise become a short SFTP write.
std::size_t read_full(int fd, char* buf, std::size_t len) {
    std::size_t got = 0;
    while (got < len) {
        ssize_t n = ::read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(ExitCode::io, std::string("cannot read standard input: ") + std::strerror(errno));
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    return got;
}

void write_full(int fd, const char* data, std::size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd, data, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) throw Error(ExitCode::io, std::string("cannot write standard output: ") + std::strerror(errno));
        data += w;
        n -= static_cast<std::size_t>(w);
    }
}

// A refused request as the file operations report it: missing 1, permission 77, else 74; a lost
// connection stays 69.
[[noreturn]] void refused(const std::string& op, const std::string& where, const SftpReply& r) {
    std::string text = r.status == fxp::no_such_file ? "no such file or directory" : status_text(r.status);
    std::string msg = "cannot " + op + " " + where + ": " + text + (r.msg.empty() || r.status <= 3 ? "" : " (" + r.msg + ")");
    if (r.status == fxp::no_such_file) throw FsError(ExitCode::check_failed, msg);
    if (status_exit(r.status) == ExitCode::unavailable) throw Error(ExitCode::unavailable, msg);
    throw FsError(status_exit(r.status), msg);
}

}  // namespace

void Transfer::put_stream(int fd, const std::string& dst) {
    put_source([fd](std::uint64_t, char* buf, std::size_t len) { return read_full(fd, buf, len); }, dst);
}

void Transfer::put_data(std::string_view data, const std::string& dst) {
    put_source([data](std::uint64_t off, char* buf, std::size_t len) -> std::size_t {
        if (off >= data.size()) return 0;
        std::size_t n = std::min<std::size_t>(len, data.size() - off);
        std::memcpy(buf, data.data() + off, n);
        return n;
    }, dst);
}

void Transfer::put_source(const PipeSource& src, const std::string& dst) {
    if (dst.empty() || dst.back() == '/') throw Error(ExitCode::usage, "put -: " + where(dst) + " must name a file, not a directory");
    auto [dir, name] = remote_split(dst);
    std::string tmp = remote_join(dir, part_name(name));
    SftpWire wire(sftp_.raw(), where(dst));
    // The target's stat and the temp file's open in one round trip. If the target turns out to be a
    // directory, the temp file is removed again below.
    std::uint32_t stat_id = wire.send_stat(dst);
    std::uint32_t open_id = wire.send_open(tmp, fxp::f_write | fxp::f_creat | fxp::f_trunc, 0600);
    SftpReply st = wire.await(stat_id), op = wire.await(open_id);
    if (op.is_status())
        throw Error(op.status == fxp::permission_denied ? ExitCode::no_perm : ExitCode::io,
                    "cannot create " + where(tmp) + ": " + status_text(op.status));
    std::optional<WireHandle> handle;
    handle.emplace(wire, std::string(op.payload()));
    try {
        if (st.is_status() && st.status != fxp::no_such_file) refused("stat", where(dst), st);
        std::optional<SftpAttrs> old;
        if (!st.is_status()) old = SftpWire::attrs(st);
        if (old && old->is_dir) throw Error(ExitCode::usage, "put -: " + where(dst) + " must name a file, not a directory");
        std::uint32_t mode = old ? (old->mode & 0777u) : (0666u & ~settings_.umask);
        if (events_.file_start) events_.file_start("-", 0);
        std::uint32_t set_id = 0, close_id = 0;
        SftpPipe pipe(wire, handle->get());
        pipe.upload(0, src, [&](std::uint64_t n) {
            stats_.bytes += n;
            if (events_.bytes) events_.bytes(n);
        }, [&] {  // behind the last write: the server handles them once every write is done
            set_id = wire.send_fsetstat(handle->get(), mode, static_cast<std::int64_t>(::time(nullptr)));
            close_id = wire.send_close(handle->get());
            handle->mark_closed();
        });
        if (auto r = wire.await(set_id); r.status != fxp::ok) refused("set mode and mtime of", where(tmp), r);
        if (auto r = wire.await(close_id); r.status != fxp::ok) refused("close", where(tmp), r);
        // Only once the file is whole and closed: a close that fails (NFS) must not leave it in place.
        if (auto r = wire.await(wire.send_rename(tmp, dst)); r.status != fxp::ok) {
            if (auto u = wire.await(wire.send_remove(dst)); u.status != fxp::ok) refused("rename " + where(tmp) + " to", dst, r);
            if (auto again = wire.await(wire.send_rename(tmp, dst)); again.status != fxp::ok)
                refused("rename " + where(tmp) + " to", dst, again);
        }
    } catch (...) {
        // Best effort: the session may be the thing that failed. Then the temp name is all that is left.
        handle.reset();
        try {
            if (ssh_is_connected(session_.raw())) wire.await(wire.send_remove(tmp));
        } catch (const Error&) {
        }
        throw;
    }
    ++stats_.files;
}

SftpFilePtr Transfer::open_for_read(const std::string& src) {
    SftpFilePtr f(sftp_open(sftp_.raw(), src.c_str(), O_RDONLY, 0));
    if (!f) {
        int code = sftp_get_error(sftp_.raw());
        throw Error(code == SSH_FX_PERMISSION_DENIED ? ExitCode::no_perm : ExitCode::io,
                    "cannot open " + where(src) + ": " + ssh_get_error(session_.raw()));
    }
    return f;
}

void Transfer::get_stream(const std::string& src, int fd) {
    get_to(src, [fd](std::string_view d) { write_full(fd, d.data(), d.size()); });
}

void Transfer::get_to(const std::string& src, const std::function<void(std::string_view)>& sink) {
    RemoteInfo ri;
    if (!remote_info(src, ri)) throw Error(ExitCode::io, "remote path " + where(src) + " does not exist");
    if (ri.is_dir) throw Error(ExitCode::usage, "get: " + where(src) + " is a directory; - takes one file");
    SftpFilePtr f = open_for_read(src);
    std::uint64_t size = ri.size;
    if (events_.file_start) events_.file_start(src, size);
    // Replies after a short read can come out of order: hold them until the bytes before are written.
    std::map<std::uint64_t, std::string> held;
    std::uint64_t next = 0;
    SftpWire wire(sftp_.raw(), where(src));
    SftpPipe pipe(wire, handle_of(f.get()));
    pipe.download(0, size, [&](std::uint64_t off, const char* data, std::size_t n) {
        if (off != next) {
            held.emplace(off, std::string(data, n));
            return;
        }
        sink(std::string_view(data, n));
        next += n;
        for (auto it = held.begin(); it != held.end() && it->first == next; it = held.erase(it)) {
            sink(it->second);
            next += it->second.size();
        }
    }, [&](std::uint64_t n) {
        stats_.bytes += n;
        if (events_.bytes) events_.bytes(n);
    });
    if (!held.empty()) throw Error(ExitCode::io, where(src) + " changed while it was read (a gap at byte " + std::to_string(next) + ")");
    ++stats_.files;
}

std::string Transfer::get_data(const std::string& src, std::uint64_t max_size) {
    SftpWire wire(sftp_.raw(), where(src));
    // The stat (for the size) and the open in one round trip.
    std::uint32_t stat_id = wire.send_stat(src), open_id = wire.send_open(src, fxp::f_read, 0);
    SftpReply st = wire.await(stat_id), op = wire.await(open_id);
    std::optional<WireHandle> handle;
    if (!op.is_status()) handle.emplace(wire, std::string(op.payload()));
    if (st.is_status()) refused("stat", where(src), st);
    SftpAttrs a = SftpWire::attrs(st);
    if (a.is_dir) throw Error(ExitCode::usage, "get: " + where(src) + " is a directory");
    if (a.size > max_size) throw Error(ExitCode::data, "get: " + where(src) + " is larger than " + std::to_string(max_size >> 20) + " MiB");
    if (!handle) refused("open", where(src), op);
    if (events_.file_start) events_.file_start(src, a.size);
    std::string out(static_cast<std::size_t>(a.size), '\0');
    std::map<std::uint64_t, std::uint64_t> have;  // offset -> end of each piece read
    auto sink = [&](std::uint64_t off, const char* data, std::size_t n) {
        std::memcpy(out.data() + off, data, n);  // download never delivers past the size asked
        have[off] = off + n;
    };
    auto progress = [&](std::uint64_t n) {
        stats_.bytes += n;
        if (events_.bytes) events_.bytes(n);
    };
    // The close behind the last read, where the server reads in full up to EOF (OpenSSH's sftp-server,
    // which offers limits@openssh.com). Whatever a short read left out is read again below.
    PipeAfterLast close_early;
    if (sftp_extension_supported(sftp_.raw(), "limits@openssh.com", "1") != 0)
        close_early = [&] {
            wire.send_close(handle->get());
            handle->mark_closed();
        };
    SftpPipe(wire, handle->get()).download(0, a.size, sink, progress, close_early);
    handle.reset();
    std::uint64_t end = 0;  // where the bytes read so far stop being contiguous from 0
    for (auto& [off, e] : have) {
        if (off > end) break;
        end = std::max(end, e);
    }
    if (end < a.size && close_early) {  // a short read: the rest on a new handle, asking again as needed
        SftpReply again = wire.await(wire.send_open(src, fxp::f_read, 0));
        if (again.is_status()) refused("open", where(src), again);
        WireHandle h(wire, std::string(again.payload()));
        SftpPipe(wire, h.get()).download(end, a.size, sink, progress);
        for (auto& [off, e] : have) {
            if (off > end) break;
            end = std::max(end, e);
        }
    }
    // A file that shrank meanwhile ends where its bytes end, unless that leaves a gap.
    if (!have.empty() && have.rbegin()->second > end) throw Error(ExitCode::io, where(src) + " changed while it was read");
    out.resize(static_cast<std::size_t>(end));
    ++stats_.files;
    return out;
}

}  // namespace tn::ssh
