// Sftp: the small-file SFTP operations tools need (stat, read, append, mkdir, chmod).
// Bulk transfers with pipelining belong to tn-exec's transfer code, built on the same handle.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ssh/handles.hpp"

namespace tn::ssh {

class Session;

struct RemoteStat {
    std::uint32_t mode = 0;  // permission bits only
    std::uint64_t size = 0;
    bool is_dir = false;
};

class Sftp {
public:
    // Opens the sftp subsystem on an authenticated session. Throws tn::Error(unavailable).
    explicit Sftp(Session& session);

    std::optional<RemoteStat> stat(const std::string& path);  // nullopt: does not exist
    // The whole file, or nullopt if it does not exist; files over `max_bytes` throw tn::Error(data).
    std::optional<std::string> read_file(const std::string& path, std::size_t max_bytes);
    void mkdir(const std::string& path, std::uint32_t mode);
    void chmod(const std::string& path, std::uint32_t mode);
    // Appends to the file (creating it with `mode`); never rewrites what is there.
    void append(const std::string& path, const std::string& data, std::uint32_t mode);

    sftp_session_struct* raw() const { return s_.get(); }

private:
    [[noreturn]] void fail(const std::string& op, const std::string& path) const;
    SftpPtr s_;
    std::string endpoint_;
};

}  // namespace tn::ssh
