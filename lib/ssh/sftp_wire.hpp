// SFTP v3 packets spoken directly on libssh's sftp channel (draft-ietf-secsh-filexfer-02), for what
// libssh 0.10 only does one round trip at a time: pipelined reads and writes (SftpPipe), and control
// requests sent together without waiting for each reply (stat with open, fsetstat and close behind the
// last write, close behind the last read). Every reply to a request sent here is read here before the
// caller returns to libssh's own sftp calls, so the two never see each other's packets.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "base/exit_code.hpp"

struct sftp_session_struct;

namespace tn::ssh {

namespace fxp {
constexpr std::uint8_t open = 3, close = 4, read = 5, write = 6, fsetstat = 10, remove = 13, stat = 17, rename = 18,
                       extended = 200;
constexpr std::uint8_t status = 101, handle = 102, data = 103, attrs = 105;
constexpr std::uint32_t ok = 0, eof = 1, no_such_file = 2, permission_denied = 3, failure = 4;
// SSH_FXF_* open flags
constexpr std::uint32_t f_read = 1, f_write = 2, f_creat = 8, f_trunc = 0x10;
}  // namespace fxp

// A STATUS code in words ("no such file", "permission denied", ...).
const char* status_text(std::uint32_t code);
// What a refused request means as an exit code: permission 77, a lost connection 69, else 74.
ExitCode status_exit(std::uint32_t code);

struct SftpReply {
    std::uint8_t type = 0;
    std::uint32_t id = 0;
    bool control = false;                    // answers a control request (not a read or write)
    std::uint32_t status = 0;                // STATUS
    std::string msg;                         // STATUS message
    std::string body;                        // the whole packet after its length
    std::size_t data_off = 0, data_len = 0;  // DATA payload, HANDLE string or ATTRS inside body

    bool is_status() const { return type == fxp::status; }
    std::string_view payload() const { return std::string_view(body).substr(data_off, data_len); }
};

// Reads a reply's type, id, status and where its payload lies from r.body (the packet after its
// length), checking every length against the body; throws tn::Error (69) for a reply no request could
// have, naming `what`. The pure part of SftpWire::receive: bytes from a hostile server (fuzz_sftp_reply).
void parse_reply(SftpReply& r, std::string_view what);

// The attributes a STAT reply carries that transfers use.
struct SftpAttrs {
    bool is_dir = false;
    std::uint32_t mode = 0;  // permission bits (07777)
    std::uint64_t size = 0;
    std::int64_t mtime = 0;
};

class SftpWire {
public:
    // `what` names the remote file in errors ("user@host:port:/path").
    SftpWire(sftp_session_struct* sftp, std::string what);
    // Reads the replies still owed (requests a failed transfer left behind), so libssh's next call
    // starts on a clean channel. Best effort: a lost connection ends it.
    ~SftpWire();
    SftpWire(const SftpWire&) = delete;
    SftpWire& operator=(const SftpWire&) = delete;

    std::uint32_t send_stat(const std::string& path);
    std::uint32_t send_open(const std::string& path, std::uint32_t pflags, std::uint32_t mode);
    std::uint32_t send_close(const std::string& handle);
    std::uint32_t send_remove(const std::string& path);
    std::uint32_t send_fsetstat(const std::string& handle, std::uint32_t mode, std::int64_t mtime);
    // posix-rename@openssh.com where offered (replaces an existing target atomically), else RENAME.
    std::uint32_t send_rename(const std::string& from, const std::string& to);
    std::uint32_t send_read(const std::string& handle, std::uint64_t offset, std::uint32_t len);
    // A WRITE whose data the caller has put at packet[write_head(handle) ...]: fills in the header.
    std::uint32_t send_write(std::string& packet, const std::string& handle, std::uint64_t offset);
    static std::size_t write_head(const std::string& handle) { return 4 + 1 + 4 + 4 + handle.size() + 8 + 4; }

    // The next reply off the channel, whichever request it answers (valid until the next call).
    const SftpReply& receive();
    // The reply to `id`: one kept aside earlier, or read off the channel, keeping others aside.
    SftpReply await(std::uint32_t id);
    // Keeps a reply read by receive() for a later await (a control request's, amid data replies).
    void keep(const SftpReply& r) { kept_.emplace(r.id, r); }

    static SftpAttrs attrs(const SftpReply& r);  // of an ATTRS reply; throws tn::Error if malformed
    const std::string& what() const { return what_; }
    sftp_session_struct* sftp() const { return sftp_; }

private:
    std::string start(std::uint8_t type, std::uint32_t& id);  // a packet's length (to fill in), type, id
    std::uint32_t send_control(std::string& packet, std::uint32_t id);
    void send(std::string& packet, std::uint32_t id);
    void read_exact(char* buf, std::size_t n);

    sftp_session_struct* sftp_;
    std::string what_;
    SftpReply reply_;
    std::map<std::uint32_t, SftpReply> kept_;
    std::set<std::uint32_t> pending_;  // every request sent and not yet answered
    std::set<std::uint32_t> control_;  // those of them that are not reads or writes
    // Our own id range, far from libssh's counter, so a stray reply can never match its requests.
    std::uint32_t id_ = 0x80000000u;
};

// A remote file handle opened through SftpWire, closed on destruction unless closed already (best
// effort then: the connection may be what failed).
class WireHandle {
public:
    WireHandle(SftpWire& wire, std::string handle) : wire_(wire), handle_(std::move(handle)) {}
    WireHandle(const WireHandle&) = delete;
    WireHandle& operator=(const WireHandle&) = delete;
    ~WireHandle();
    const std::string& get() const { return handle_; }
    // The CLOSE went out (pipelined behind other requests): the destructor leaves it alone.
    void mark_closed() { open_ = false; }

private:
    SftpWire& wire_;
    std::string handle_;
    bool open_ = true;
};

}  // namespace tn::ssh
