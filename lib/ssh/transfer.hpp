// File and tree transfers over SFTP with scp's target rules: pipelined data, modes and mtimes kept,
// a temp name renamed into place at the end, and --resume of the temp file an interrupted run left.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "ssh/handles.hpp"
#include "ssh/sftp_pipe.hpp"

namespace tn::ssh {

class Session;
class Sftp;

struct TransferSettings {
    bool recursive = false;
    bool resume = false;
    // Modes are only ever the permission bits (0777): set-id and sticky bits are never carried over,
    // either way. A get applies `umask` to them unless `preserve` is set (as sftp/scp without -p do).
    bool preserve = false;
    std::uint32_t umask = 022;
};

// The mode a downloaded file or directory gets from the remote one's mode.
std::uint32_t local_mode(std::uint32_t remote_mode, const TransferSettings& s);

struct TransferEvents {
    std::function<void(const std::string& name, std::uint64_t size)> file_start;  // for a progress bar
    std::function<void(std::uint64_t bytes)> bytes;
    std::function<void(const std::string& message)> note;  // resumed, restarted: for the log
};

struct TransferStats {
    std::uint64_t files = 0, dirs = 0, bytes = 0;
};

// The name an unfinished file has beside its final name: ".NAME.tn-part".
std::string part_name(const std::string& name);

class Transfer {
public:
    Transfer(Session& session, Sftp& sftp, TransferSettings settings, TransferEvents events);

    // Each local source to the remote `dest`; dest is a directory when it exists as one, ends in '/',
    // or there are several sources. Throws tn::Error naming host and path.
    void put(const std::vector<std::filesystem::path>& sources, const std::string& dest);
    // Each remote source to the local `dest`, with the same rules.
    void get(const std::vector<std::string>& sources, const std::filesystem::path& dest);

    // `put - HOST:PATH`: everything fd gives until EOF, into a temp name renamed onto `dest` when whole
    // (a new file gets 0666 minus the umask, an existing one keeps its mode). On any failure the temp
    // file is removed, so nothing half written is left under either name.
    void put_stream(int fd, const std::string& dest);
    // `get HOST:PATH -`: the remote file's bytes, in order, to fd.
    void get_stream(const std::string& src, int fd);
    // The same bytes, in order, to `sink` (with -H: into that host's output lines).
    void get_to(const std::string& src, const std::function<void(std::string_view)>& sink);
    // put_stream's rules for bytes already in memory (serve --stdio's put): no copy through a file.
    void put_data(std::string_view data, const std::string& dest);
    // A remote file read into memory (serve --stdio's get), as its stat found it (fewer bytes if it
    // has shrunk since). FsError for a missing (1) or forbidden (77) file, Error(usage) for a directory,
    // Error(data) for a file over `max_size`.
    std::string get_data(const std::string& src, std::uint64_t max_size);
    const TransferStats& stats() const { return stats_; }

private:
    struct RemoteInfo {
        bool is_dir = false, is_link = false;
        std::uint32_t mode = 0644;
        std::uint64_t size = 0;
        std::int64_t mtime = 0;
    };
    std::string where(const std::string& remote) const;  // user@host:port:PATH, for messages
    bool remote_info(const std::string& path, RemoteInfo& out);
    void put_file(const std::filesystem::path& src, const std::string& dst);
    void put_tree(const std::filesystem::path& src, const std::string& dst);
    void get_file(const std::string& src, const RemoteInfo& info, const std::filesystem::path& dst);
    void get_tree(const std::string& src, const RemoteInfo& info, const std::filesystem::path& dst, int depth);
    // put_stream and put_data: the source's bytes until it gives 0, into a temp name renamed onto dest.
    void put_source(const PipeSource& src, const std::string& dest);
    SftpFilePtr open_for_read(const std::string& src);
    void set_remote_attrs(const std::string& path, std::uint32_t mode, std::int64_t mtime);
    // Does the remote file's first `len` bytes equal the local file's? sha256 on both sides when the
    // remote has sha256sum, else compared byte by byte over SFTP.
    bool same_prefix(const std::string& remote, int local_fd, std::uint64_t len);

    Session& session_;
    Sftp& sftp_;
    TransferSettings settings_;
    TransferEvents events_;
    TransferStats stats_;
};

}  // namespace tn::ssh
