// Transfer: put/get of files and trees on top of SftpPipe, with temp names, attributes and resume.
// Streams and in-memory data (put -, get -, serve's put and get) are in transfer_stream.cpp.
#include "ssh/transfer.hpp"

#include <fcntl.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>

#include "base/error.hpp"
#include "base/strings.hpp"
#include "base/unique_fd.hpp"
#include "ssh/exec.hpp"
#include "ssh/remote_path.hpp"
#include "ssh/session.hpp"
#include "ssh/sftp.hpp"
#include "ssh/sftp_pipe.hpp"

namespace fs = std::filesystem;

namespace tn::ssh {

namespace {

// A tree deeper than this is a symlink loop or a hostile server.
constexpr int max_depth = 64;

struct AttrFree {
    void operator()(sftp_attributes a) const { sftp_attributes_free(a); }
};
using AttrPtr = std::unique_ptr<sftp_attributes_struct, AttrFree>;

struct DirClose {
    void operator()(sftp_dir d) const { sftp_closedir(d); }
};

Error local_error(const std::string& what, const fs::path& p, int err) {
    if (err == ENOSPC || err == EDQUOT) return Error(ExitCode::io, "local disk full writing " + p.string());
    return Error(err == EACCES || err == EPERM ? ExitCode::no_perm : ExitCode::io,
                 "cannot " + what + " " + p.string() + ": " + std::strerror(err));
}

std::string sha256_local(int fd, std::uint64_t len) {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
    std::string buf(1 << 20, '\0');
    std::uint64_t off = 0;
    while (off < len) {
        ssize_t n = ::pread(fd, buf.data(), std::min<std::uint64_t>(buf.size(), len - off), static_cast<off_t>(off));
        if (n <= 0) return {};
        EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(n));
        off += static_cast<std::uint64_t>(n);
    }
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(ctx.get(), md, &mdlen);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < mdlen; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

}  // namespace

std::string part_name(const std::string& name) { return "." + name + ".tn-part"; }

std::uint32_t local_mode(std::uint32_t remote_mode, const TransferSettings& s) {
    std::uint32_t m = remote_mode & 0777u;  // a hostile server's 06777 must not land set-id here
    return s.preserve ? m : m & ~s.umask;
}

Transfer::Transfer(Session& session, Sftp& sftp, TransferSettings settings, TransferEvents events)
    : session_(session), sftp_(sftp), settings_(settings), events_(std::move(events)) {}

std::string Transfer::where(const std::string& remote) const { return session_.endpoint() + ":" + remote; }

bool Transfer::remote_info(const std::string& path, RemoteInfo& out) {
    AttrPtr a(sftp_stat(sftp_.raw(), path.empty() ? "." : path.c_str()));
    if (!a) {
        int code = sftp_get_error(sftp_.raw());
        if (code == SSH_FX_NO_SUCH_FILE || code == SSH_FX_NO_SUCH_PATH) return false;
        throw Error(code == SSH_FX_PERMISSION_DENIED ? ExitCode::no_perm : ExitCode::io,
                    "cannot stat " + where(path) + ": " + ssh_get_error(session_.raw()));
    }
    out.is_dir = a->type == SSH_FILEXFER_TYPE_DIRECTORY;
    out.mode = a->permissions & 07777u;
    out.size = a->size;
    out.mtime = a->mtime;
    return true;
}

void Transfer::set_remote_attrs(const std::string& path, std::uint32_t mode, std::int64_t mtime) {
    sftp_attributes_struct attr{};
    attr.flags = SSH_FILEXFER_ATTR_PERMISSIONS | SSH_FILEXFER_ATTR_ACMODTIME;
    attr.permissions = mode;
    attr.atime = static_cast<std::uint32_t>(mtime);
    attr.mtime = static_cast<std::uint32_t>(mtime);
    if (sftp_setstat(sftp_.raw(), path.c_str(), &attr) != 0)
        throw Error(ExitCode::io, "cannot set mode and mtime of " + where(path) + ": " + ssh_get_error(session_.raw()));
}

bool Transfer::same_prefix(const std::string& remote, int local_fd, std::uint64_t len) {
    if (len == 0) return true;
    // One exec round trip instead of reading the overlap back: the remote hashes its own bytes.
    std::string out;
    ExecRequest req;
    req.command = "head -c " + std::to_string(len) + " -- " + shell_quote(remote) + " | sha256sum";
    try {
        auto r = run_command(session_, req, {[&](std::string_view d) { if (out.size() < 4096) out.append(d); },
                                             [](std::string_view) {}});
        if (r.exit_status == 0 && out.size() >= 64) return out.substr(0, 64) == sha256_local(local_fd, len);
    } catch (const Error&) {
        // No exec allowed (sftp-only account): fall back to comparing the bytes over SFTP.
    }
    SftpFilePtr f(sftp_open(sftp_.raw(), remote.c_str(), O_RDONLY, 0));
    if (!f) return false;
    bool same = true;
    std::string local;
    SftpWire wire(sftp_.raw(), where(remote));
    SftpPipe pipe(wire, handle_of(f.get()));
    pipe.download(0, len, [&](std::uint64_t off, const char* d, std::size_t n) {
        local.resize(n);
        if (!same || ::pread(local_fd, local.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n) ||
            std::memcmp(local.data(), d, n) != 0)
            same = false;
    }, {});
    return same;
}

void Transfer::put(const std::vector<fs::path>& sources, const std::string& dest) {
    RemoteInfo di;
    bool dest_exists = remote_info(dest, di);
    bool into_dir = (dest_exists && di.is_dir) || sources.size() > 1 || (!dest.empty() && dest.back() == '/');
    if (into_dir && !dest_exists) throw Error(ExitCode::io, "remote directory " + where(dest) + " does not exist");
    for (const auto& src : sources) {
        std::error_code ec;
        auto st = fs::status(src, ec);
        if (ec || !fs::exists(st)) throw Error(ExitCode::io, "local path " + src.string() + " does not exist");
        std::string name = src.filename().empty() ? src.parent_path().filename().string() : src.filename().string();
        std::string target = into_dir ? remote_join(dest, name) : dest;
        if (fs::is_directory(st)) {
            if (!settings_.recursive) throw Error(ExitCode::usage, src.string() + " is a directory (use -r)");
            put_tree(src, target);
        } else {
            put_file(src, target);
        }
    }
}

void Transfer::put_tree(const fs::path& src, const std::string& dst) {
    struct stat st{};
    if (::stat(src.c_str(), &st) != 0) throw local_error("stat", src, errno);
    RemoteInfo ri;
    if (!remote_info(dst, ri)) {
        if (sftp_mkdir(sftp_.raw(), dst.c_str(), 0700) != 0)
            throw Error(ExitCode::io, "cannot create directory " + where(dst) + ": " + ssh_get_error(session_.raw()));
    } else if (!ri.is_dir) {
        throw Error(ExitCode::io, where(dst) + " exists and is not a directory");
    }
    ++stats_.dirs;
    std::error_code ec;
    for (fs::directory_iterator it(src, ec), end; !ec && it != end; it.increment(ec)) {
        const auto& p = it->path();
        std::string target = remote_join(dst, p.filename().string());
        if (it->is_directory(ec)) put_tree(p, target);
        else if (it->is_regular_file(ec)) put_file(p, target);
        else if (events_.note) events_.note("skipping " + p.string() + " (not a regular file)");
    }
    if (ec) throw local_error("list", src, ec.value());
    // Last, so adding the children does not bump the directory's mtime again.
    set_remote_attrs(dst, st.st_mode & 0777u, st.st_mtime);
}

void Transfer::put_file(const fs::path& src, const std::string& dst) {
    UniqueFd fd(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw local_error("open", src, errno);
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0) throw local_error("stat", src, errno);
    auto [dir, name] = remote_split(dst);
    std::string tmp = remote_join(dir, part_name(name));
    std::uint64_t size = static_cast<std::uint64_t>(st.st_size);

    std::uint64_t start = 0;
    RemoteInfo ti;
    if (settings_.resume && remote_info(tmp, ti) && !ti.is_dir && ti.size <= size) {
        if (same_prefix(tmp, fd.get(), ti.size)) {
            start = ti.size;
            if (events_.note) events_.note("resuming " + where(dst) + " at byte " + std::to_string(start));
        } else if (events_.note) {
            events_.note("partial " + where(tmp) + " does not match " + src.string() + "; starting over");
        }
    }
    int flags = O_WRONLY | O_CREAT | (start == 0 ? O_TRUNC : 0);
    SftpFilePtr f(sftp_open(sftp_.raw(), tmp.c_str(), flags, 0600));
    if (!f) {
        int code = sftp_get_error(sftp_.raw());
        throw Error(code == SSH_FX_PERMISSION_DENIED ? ExitCode::no_perm : ExitCode::io,
                    "cannot create " + where(tmp) + ": " + ssh_get_error(session_.raw()));
    }
    if (events_.file_start) events_.file_start(src.string(), size);
    if (events_.bytes && start > 0) events_.bytes(start);
    SftpWire wire(sftp_.raw(), where(dst));
    SftpPipe pipe(wire, handle_of(f.get()));
    int lfd = fd.get();
    pipe.upload(start, [&](std::uint64_t off, char* buf, std::size_t len) -> std::size_t {
        if (off >= size) return 0;  // the snapshot size: a growing log is copied up to where it was
        ssize_t n = ::pread(lfd, buf, std::min<std::uint64_t>(len, size - off), static_cast<off_t>(off));
        if (n < 0) throw local_error("read", src, errno);
        return static_cast<std::size_t>(n);
    }, [&](std::uint64_t n) {
        stats_.bytes += n;
        if (events_.bytes) events_.bytes(n);
    });
    sftp_file raw = f.release();
    if (sftp_close(raw) != 0) throw Error(ExitCode::io, "cannot close " + where(tmp) + ": " + ssh_get_error(session_.raw()));
    set_remote_attrs(tmp, st.st_mode & 0777u, st.st_mtime);
    // libssh uses posix-rename@openssh.com when offered, which replaces an existing file atomically.
    if (sftp_rename(sftp_.raw(), tmp.c_str(), dst.c_str()) != 0) {
        RemoteInfo old;
        if (!remote_info(dst, old) || old.is_dir || sftp_unlink(sftp_.raw(), dst.c_str()) != 0 ||
            sftp_rename(sftp_.raw(), tmp.c_str(), dst.c_str()) != 0)
            throw Error(ExitCode::io, "cannot rename " + where(tmp) + " to " + dst + ": " + ssh_get_error(session_.raw()));
    }
    ++stats_.files;
}

void Transfer::get(const std::vector<std::string>& sources, const fs::path& dest) {
    std::error_code ec;
    bool dest_dir = fs::is_directory(dest, ec);
    bool into_dir = dest_dir || sources.size() > 1 || (!dest.empty() && dest.string().back() == '/');
    if (into_dir && !dest_dir) throw Error(ExitCode::io, "local directory " + dest.string() + " does not exist");
    for (const auto& src : sources) {
        RemoteInfo ri;
        if (!remote_info(src, ri)) throw Error(ExitCode::io, "remote path " + where(src) + " does not exist");
        fs::path target = into_dir ? dest / remote_split(src.empty() ? "." : src).second : dest;
        if (ri.is_dir) {
            if (!settings_.recursive) throw Error(ExitCode::usage, where(src) + " is a directory (use -r)");
            get_tree(src, ri, target, 0);
        } else {
            get_file(src, ri, target);
        }
    }
}

void Transfer::get_tree(const std::string& src, const RemoteInfo& info, const fs::path& dst, int depth) {
    if (depth > max_depth) throw Error(ExitCode::data, where(src) + ": directory tree deeper than " + std::to_string(max_depth));
    if (::mkdir(dst.c_str(), 0700) != 0 && errno != EEXIST) throw local_error("create directory", dst, errno);
    ++stats_.dirs;
    std::unique_ptr<sftp_dir_struct, DirClose> d(sftp_opendir(sftp_.raw(), src.empty() ? "." : src.c_str()));
    if (!d) throw Error(ExitCode::io, "cannot list " + where(src) + ": " + ssh_get_error(session_.raw()));
    std::vector<std::pair<std::string, RemoteInfo>> entries;
    while (AttrPtr a{sftp_readdir(sftp_.raw(), d.get())}) {
        std::string name = a->name != nullptr ? a->name : "";
        if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) continue;
        RemoteInfo ri;
        ri.is_dir = a->type == SSH_FILEXFER_TYPE_DIRECTORY;
        ri.is_link = a->type == SSH_FILEXFER_TYPE_SYMLINK;
        ri.mode = a->permissions & 07777u;
        ri.size = a->size;
        ri.mtime = a->mtime;
        entries.emplace_back(std::move(name), ri);
    }
    d.reset();
    for (auto& [name, ri] : entries) {
        std::string path = remote_join(src, name);
        if (ri.is_link && !remote_info(path, ri)) continue;  // dangling link
        if (ri.is_dir) get_tree(path, ri, dst / name, depth + 1);
        else get_file(path, ri, dst / name);
    }
    if (::chmod(dst.c_str(), local_mode(info.mode, settings_)) != 0) throw local_error("chmod", dst, errno);
    timespec ts[2] = {{static_cast<time_t>(info.mtime), 0}, {static_cast<time_t>(info.mtime), 0}};
    if (::utimensat(AT_FDCWD, dst.c_str(), ts, 0) != 0) throw local_error("set mtime of", dst, errno);
}

void Transfer::get_file(const std::string& src, const RemoteInfo& info, const fs::path& dst) {
    fs::path dir = dst.parent_path().empty() ? fs::path(".") : dst.parent_path();
    fs::path tmp = dir / part_name(dst.filename().string());
    std::uint64_t start = 0;
    struct stat tst{};
    bool have_part = settings_.resume && ::stat(tmp.c_str(), &tst) == 0 && S_ISREG(tst.st_mode) &&
                     static_cast<std::uint64_t>(tst.st_size) <= info.size;
    UniqueFd fd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | (have_part ? 0 : O_TRUNC), 0600));
    if (!fd) throw local_error("create", tmp, errno);
    if (have_part) {
        if (same_prefix(src, fd.get(), static_cast<std::uint64_t>(tst.st_size))) {
            start = static_cast<std::uint64_t>(tst.st_size);
            if (events_.note) events_.note("resuming " + dst.string() + " at byte " + std::to_string(start));
        } else {
            if (events_.note) events_.note("partial " + tmp.string() + " does not match " + where(src) + "; starting over");
            if (::ftruncate(fd.get(), 0) != 0) throw local_error("truncate", tmp, errno);
        }
    }
    SftpFilePtr f(sftp_open(sftp_.raw(), src.c_str(), O_RDONLY, 0));
    if (!f) {
        int code = sftp_get_error(sftp_.raw());
        throw Error(code == SSH_FX_PERMISSION_DENIED ? ExitCode::no_perm : ExitCode::io,
                    "cannot open " + where(src) + ": " + ssh_get_error(session_.raw()));
    }
    if (events_.file_start) events_.file_start(src, info.size);
    if (events_.bytes && start > 0) events_.bytes(start);
    SftpWire wire(sftp_.raw(), where(src));
    SftpPipe pipe(wire, handle_of(f.get()));
    int lfd = fd.get();
    pipe.download(start, info.size, [&](std::uint64_t off, const char* data, std::size_t n) {
        while (n > 0) {
            ssize_t w = ::pwrite(lfd, data, n, static_cast<off_t>(off));
            if (w < 0) {
                if (errno == EINTR) continue;
                throw local_error("write", tmp, errno);
            }
            data += w;
            off += static_cast<std::uint64_t>(w);
            n -= static_cast<std::size_t>(w);
        }
    }, [&](std::uint64_t n) {
        stats_.bytes += n;
        if (events_.bytes) events_.bytes(n);
    });
    if (::fchmod(lfd, local_mode(info.mode, settings_)) != 0) throw local_error("chmod", tmp, errno);
    timespec ts[2] = {{static_cast<time_t>(info.mtime), 0}, {static_cast<time_t>(info.mtime), 0}};
    if (::futimens(lfd, ts) != 0) throw local_error("set mtime of", tmp, errno);
    if (::close(fd.release()) != 0) throw local_error("close", tmp, errno);
    if (::rename(tmp.c_str(), dst.c_str()) != 0) throw local_error("rename into", dst, errno);
    ++stats_.files;
}

}  // namespace tn::ssh
