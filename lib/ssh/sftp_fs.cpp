// RemoteFs over libssh's SFTP calls.
#include "ssh/sftp_fs.hpp"

#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include <algorithm>
#include <memory>

#include "ssh/session.hpp"
#include "ssh/sftp.hpp"

namespace tn::ssh {

namespace {

constexpr int max_depth = 64;  // deeper is a loop or a hostile server

struct AttrFree {
    void operator()(sftp_attributes a) const { sftp_attributes_free(a); }
};
using AttrPtr = std::unique_ptr<sftp_attributes_struct, AttrFree>;
struct DirClose {
    void operator()(sftp_dir d) const { sftp_closedir(d); }
};

std::string join(const std::string& dir, const std::string& name) {
    if (dir.empty() || dir == ".") return name;
    return dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string last_component(std::string p) {
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    auto slash = p.rfind('/');
    return slash == std::string::npos || p == "/" ? p : p.substr(slash + 1);
}

RemoteEntry entry_from(const sftp_attributes_struct& a, std::string path, std::string name) {
    RemoteEntry e;
    e.path = std::move(path);
    e.name = std::move(name);
    switch (a.type) {
    case SSH_FILEXFER_TYPE_REGULAR: e.type = 'f'; break;
    case SSH_FILEXFER_TYPE_DIRECTORY: e.type = 'd'; break;
    case SSH_FILEXFER_TYPE_SYMLINK: e.type = 'l'; break;
    default: e.type = '?';
    }
    e.mode = a.permissions & 07777u;
    e.size = a.size;
    e.uid = a.uid;
    e.gid = a.gid;
    e.mtime = a.mtime;
    return e;
}

}  // namespace

RemoteFs::RemoteFs(Session& session, Sftp& sftp) : session_(session), sftp_(sftp.raw()) {}

void RemoteFs::fail(const std::string& op, const std::string& path) const {
    int code = sftp_get_error(sftp_);
    std::string where = session_.endpoint() + ":" + path;
    if (!ssh_is_connected(session_.raw()))
        throw Error(ExitCode::unavailable, "connection lost during " + op + " " + where);
    switch (code) {
    case SSH_FX_NO_SUCH_FILE:
    case SSH_FX_NO_SUCH_PATH: throw FsError(ExitCode::check_failed, "cannot " + op + " " + where + ": no such file or directory");
    case SSH_FX_PERMISSION_DENIED: throw FsError(ExitCode::no_perm, "cannot " + op + " " + where + ": permission denied");
    default: throw FsError(ExitCode::io, "cannot " + op + " " + where + ": " + ssh_get_error(session_.raw()));
    }
}

RemoteEntry RemoteFs::stat(const std::string& path) {
    AttrPtr a(sftp_lstat(sftp_, path.empty() ? "." : path.c_str()));
    if (!a) fail("stat", path);
    auto e = entry_from(*a, path, last_component(path));
    if (e.type == 'l') {
        char* t = sftp_readlink(sftp_, path.c_str());
        if (t != nullptr) {
            e.link_target = t;
            ssh_string_free_char(t);
        }
    }
    return e;
}

RemoteEntry RemoteFs::stat_target(const std::string& path) {
    AttrPtr a(sftp_stat(sftp_, path.empty() ? "." : path.c_str()));
    if (!a) fail("stat", path);
    return entry_from(*a, path, last_component(path));
}

std::vector<RemoteEntry> RemoteFs::list(const std::string& path, bool recursive) {
    auto top = stat(path);
    if (top.type != 'd') return {top};
    std::vector<RemoteEntry> out;
    list_into(path, recursive, 0, out);
    return out;
}

void RemoteFs::list_into(const std::string& dir, bool recursive, int depth, std::vector<RemoteEntry>& out) {
    if (depth > max_depth) throw FsError(ExitCode::io, "directory tree deeper than 64 levels at " + dir);
    std::unique_ptr<sftp_dir_struct, DirClose> d(sftp_opendir(sftp_, dir.empty() ? "." : dir.c_str()));
    if (!d) fail("list", dir);
    std::vector<RemoteEntry> here;
    while (AttrPtr a{sftp_readdir(sftp_, d.get())}) {
        std::string name = a->name != nullptr ? a->name : "";
        if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) continue;
        here.push_back(entry_from(*a, join(dir, name), name));
    }
    if (!sftp_dir_eof(d.get())) fail("list", dir);
    d.reset();
    std::sort(here.begin(), here.end(), [](const auto& x, const auto& y) { return x.name < y.name; });
    for (auto& e : here) {
        if (e.type == 'l') {
            char* t = sftp_readlink(sftp_, e.path.c_str());
            if (t != nullptr) {
                e.link_target = t;
                ssh_string_free_char(t);
            }
        }
        bool descend = recursive && e.type == 'd';
        std::string sub = e.path;
        out.push_back(std::move(e));
        if (descend) list_into(sub, true, depth + 1, out);
    }
}

void RemoteFs::mkdir(const std::string& path, bool parents, std::uint32_t mode) {
    if (!parents) {
        if (sftp_mkdir(sftp_, path.c_str(), mode) != 0) fail("create directory", path);
        return;
    }
    // -p: each missing level in turn; an existing directory is fine, an existing file is not.
    std::string so_far;
    std::size_t pos = 0;
    while (pos <= path.size()) {
        auto slash = path.find('/', pos);
        std::string part = path.substr(0, slash == std::string::npos ? path.size() : slash);
        pos = slash == std::string::npos ? path.size() + 1 : slash + 1;
        if (part.empty() || part.back() == '/') continue;
        AttrPtr a(sftp_stat(sftp_, part.c_str()));
        if (a) {
            if (a->type != SSH_FILEXFER_TYPE_DIRECTORY)
                throw FsError(ExitCode::io, "cannot create directory " + session_.endpoint() + ":" + part + ": a file is in the way");
            continue;
        }
        if (sftp_mkdir(sftp_, part.c_str(), mode) != 0) {
            AttrPtr again(sftp_stat(sftp_, part.c_str()));  // made meanwhile by someone else: fine
            if (!again || again->type != SSH_FILEXFER_TYPE_DIRECTORY) fail("create directory", part);
        }
    }
}

void RemoteFs::remove(const std::string& path, bool recursive) {
    auto e = stat(path);
    if (e.type != 'd') {
        if (sftp_unlink(sftp_, path.c_str()) != 0) fail("remove", path);
        return;
    }
    if (!recursive) throw FsError(ExitCode::io, "cannot remove " + session_.endpoint() + ":" + path + ": is a directory (use -r)");
    // Children first, deepest last in the listing order reversed; symlinks are removed, never followed.
    auto all = list(path, true);
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
        int rc = it->type == 'd' ? sftp_rmdir(sftp_, it->path.c_str()) : sftp_unlink(sftp_, it->path.c_str());
        if (rc != 0) fail("remove", it->path);
    }
    if (sftp_rmdir(sftp_, path.c_str()) != 0) fail("remove", path);
}

void RemoteFs::rename(const std::string& from, const std::string& to) {
    if (sftp_rename(sftp_, from.c_str(), to.c_str()) != 0) fail("move", from);
}

void RemoteFs::chmod(const std::string& path, std::uint32_t mode) {
    if (sftp_chmod(sftp_, path.c_str(), mode) != 0) fail("chmod", path);
}

void RemoteFs::symlink(const std::string& target, const std::string& link) {
    if (sftp_symlink(sftp_, target.c_str(), link.c_str()) != 0) fail("create symlink", link);
}

RemoteFsStat RemoteFs::df(const std::string& path) {
    if (sftp_extension_supported(sftp_, "statvfs@openssh.com", "2") == 0)
        throw FsError(ExitCode::io, "df: " + session_.endpoint() + " does not offer statvfs@openssh.com");
    sftp_statvfs_t v = sftp_statvfs(sftp_, path.empty() ? "." : path.c_str());
    if (v == nullptr) fail("df", path);
    RemoteFsStat s{v->f_frsize != 0 ? v->f_frsize : v->f_bsize, v->f_blocks, v->f_bfree, v->f_bavail, v->f_files, v->f_ffree};
    sftp_statvfs_free(v);
    return s;
}

}  // namespace tn::ssh
