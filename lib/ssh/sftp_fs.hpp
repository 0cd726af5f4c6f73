// RemoteFs: the file operations of `tn-exec ls|stat|mkdir|rm|mv|chmod|ln|df` over SFTP, with errors
// that say what went wrong in exit-code terms: missing 1, permission 77, other refusals 74.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.hpp"

struct sftp_session_struct;

namespace tn::ssh {

class Session;
class Sftp;

// A refusal by the remote file system (not a failure of the connection, which stays tn::Error(69)).
class FsError : public Error {
public:
    using Error::Error;
};

struct RemoteEntry {
    std::string path;    // as asked for, or joined below it when listing
    std::string name;    // last component
    char type = '?';     // 'f' file, 'd' directory, 'l' symlink, '?' other
    std::uint32_t mode = 0;  // permission bits (07777)
    std::uint64_t size = 0;
    std::uint32_t uid = 0, gid = 0;
    std::int64_t mtime = 0;
    std::optional<std::string> link_target;  // for symlinks
};

struct RemoteFsStat {
    std::uint64_t block_size = 0, blocks = 0, blocks_free = 0, blocks_avail = 0, files = 0, files_free = 0;
};

class RemoteFs {
public:
    RemoteFs(Session& session, Sftp& sftp);
    RemoteEntry stat(const std::string& path);  // lstat: a symlink is reported as itself
    RemoteEntry stat_target(const std::string& path);  // stat: what a symlink points to
    // The entries of a directory (sorted by name), or the path itself when it is not one; with
    // `recursive`, every level below too (not through symlinks), depth-first.
    std::vector<RemoteEntry> list(const std::string& path, bool recursive);
    void mkdir(const std::string& path, bool parents, std::uint32_t mode = 0777);
    void remove(const std::string& path, bool recursive);
    void rename(const std::string& from, const std::string& to);
    void chmod(const std::string& path, std::uint32_t mode);
    void symlink(const std::string& target, const std::string& link);
    // statvfs@openssh.com; FsError(74) when the server does not offer it.
    RemoteFsStat df(const std::string& path);

private:
    [[noreturn]] void fail(const std::string& op, const std::string& path) const;
    void list_into(const std::string& dir, bool recursive, int depth, std::vector<RemoteEntry>& out);
    Session& session_;
    sftp_session_struct* sftp_;
};

}  // namespace tn::ssh
