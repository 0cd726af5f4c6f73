// SFTP v3 packets on the sftp channel: building requests, reading and checking replies.
#include "ssh/sftp_wire.hpp"

#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include <cstring>

#include "base/error.hpp"

namespace tn::ssh {

namespace {

// Replies are bounded by the server's own 256 KiB message cap; anything larger is a broken peer.
constexpr std::uint32_t max_reply = 256 * 1024 + 1024;
// A blocking channel read gives up after the session timeout; this many in a row means a dead peer.
constexpr int max_idle_timeouts = 6;

void put32(std::string& b, std::uint32_t v) {
    char c[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
    b.append(c, 4);
}
void put32_at(char* p, std::uint32_t v) {
    p[0] = char(v >> 24), p[1] = char(v >> 16), p[2] = char(v >> 8), p[3] = char(v);
}
void put64(std::string& b, std::uint64_t v) {
    put32(b, static_cast<std::uint32_t>(v >> 32));
    put32(b, static_cast<std::uint32_t>(v));
}
void put_str(std::string& b, std::string_view s) {
    put32(b, static_cast<std::uint32_t>(s.size()));
    b += s;
}
std::uint32_t get32(const char* p) {
    auto u = reinterpret_cast<const unsigned char*>(p);
    return (std::uint32_t(u[0]) << 24) | (std::uint32_t(u[1]) << 16) | (std::uint32_t(u[2]) << 8) | u[3];
}

constexpr std::uint32_t attr_size = 1, attr_uidgid = 2, attr_perm = 4, attr_time = 8;

}  // namespace

const char* status_text(std::uint32_t code) {
    switch (code) {
    case fxp::no_such_file: return "no such file";
    case fxp::permission_denied: return "permission denied";
    case fxp::failure: return "failure (disk full?)";
    case 5: return "bad message";
    case 6: return "no connection";
    case 7: return "connection lost";
    case 8: return "operation unsupported";
    default: return "error";
    }
}

ExitCode status_exit(std::uint32_t code) {
    return code == fxp::permission_denied ? ExitCode::no_perm
           : code == 6 || code == 7       ? ExitCode::unavailable
                                          : ExitCode::io;
}

SftpWire::SftpWire(sftp_session_struct* sftp, std::string what) : sftp_(sftp), what_(std::move(what)) {}

SftpWire::~SftpWire() {
    try {
        while (!pending_.empty() && ssh_is_connected(sftp_->session)) receive();
    } catch (const Error&) {
        // The connection failed; nothing is left to read.
    }
}

std::string SftpWire::start(std::uint8_t type, std::uint32_t& id) {
    std::string p(4, '\0');  // the length, filled in by send()
    p.push_back(static_cast<char>(type));
    id = id_++;
    put32(p, id);
    return p;
}

void SftpWire::send(std::string& packet, std::uint32_t id) {
    put32_at(packet.data(), static_cast<std::uint32_t>(packet.size() - 4));
    if (ssh_channel_write(sftp_->channel, packet.data(), static_cast<uint32_t>(packet.size())) !=
        static_cast<int>(packet.size()))
        throw Error(ExitCode::unavailable,
                    "connection lost while sending to " + what_ + ": " + ssh_get_error(sftp_->session));
    pending_.insert(id);
}

std::uint32_t SftpWire::send_control(std::string& packet, std::uint32_t id) {
    send(packet, id);
    control_.insert(id);
    return id;
}

std::uint32_t SftpWire::send_stat(const std::string& path) {
    std::uint32_t id;
    auto p = start(fxp::stat, id);
    put_str(p, path.empty() ? "." : path);
    return send_control(p, id);
}

std::uint32_t SftpWire::send_open(const std::string& path, std::uint32_t pflags, std::uint32_t mode) {
    std::uint32_t id;
    auto p = start(fxp::open, id);
    put_str(p, path);
    put32(p, pflags);
    put32(p, attr_perm);
    put32(p, mode);
    return send_control(p, id);
}

std::uint32_t SftpWire::send_close(const std::string& handle) {
    std::uint32_t id;
    auto p = start(fxp::close, id);
    put_str(p, handle);
    return send_control(p, id);
}

std::uint32_t SftpWire::send_remove(const std::string& path) {
    std::uint32_t id;
    auto p = start(fxp::remove, id);
    put_str(p, path);
    return send_control(p, id);
}

std::uint32_t SftpWire::send_fsetstat(const std::string& handle, std::uint32_t mode, std::int64_t mtime) {
    std::uint32_t id;
    auto p = start(fxp::fsetstat, id);
    put_str(p, handle);
    put32(p, attr_perm | attr_time);
    put32(p, mode);
    put32(p, static_cast<std::uint32_t>(mtime));  // atime
    put32(p, static_cast<std::uint32_t>(mtime));
    return send_control(p, id);
}

std::uint32_t SftpWire::send_rename(const std::string& from, const std::string& to) {
    std::uint32_t id;
    bool posix = sftp_extension_supported(sftp_, "posix-rename@openssh.com", "1") != 0;
    auto p = start(posix ? fxp::extended : fxp::rename, id);
    if (posix) put_str(p, "posix-rename@openssh.com");
    put_str(p, from);
    put_str(p, to);
    return send_control(p, id);
}

std::uint32_t SftpWire::send_read(const std::string& handle, std::uint64_t offset, std::uint32_t len) {
    std::uint32_t id;
    auto p = start(fxp::read, id);
    put_str(p, handle);
    put64(p, offset);
    put32(p, len);
    send(p, id);
    return id;
}

std::uint32_t SftpWire::send_write(std::string& packet, const std::string& handle, std::uint64_t offset) {
    std::string h;
    std::uint32_t id;
    h = start(fxp::write, id);
    put_str(h, handle);
    put64(h, offset);
    put32(h, static_cast<std::uint32_t>(packet.size() - write_head(handle)));
    std::memcpy(packet.data(), h.data(), h.size());
    send(packet, id);
    return id;
}

void SftpWire::read_exact(char* buf, std::size_t n) {
    int idle = 0;
    while (n > 0) {
        int r = ssh_channel_read(sftp_->channel, buf, static_cast<uint32_t>(n), 0);
        if (r < 0 || (r == 0 && (ssh_channel_is_eof(sftp_->channel) || ssh_channel_is_closed(sftp_->channel))))
            throw Error(ExitCode::unavailable,
                        "connection lost while reading from " + what_ + ": " + ssh_get_error(sftp_->session));
        if (r == 0) {
            if (++idle >= max_idle_timeouts)
                throw Error(ExitCode::unavailable, "no reply from the server for " + what_);
            continue;
        }
        idle = 0;
        buf += r;
        n -= static_cast<std::size_t>(r);
    }
}

void parse_reply(SftpReply& r, std::string_view what) {
    auto malformed = [&](const char* which) {
        return Error(ExitCode::unavailable, std::string("malformed sftp ") + which + " for " + std::string(what));
    };
    const std::string& b = r.body;
    if (b.size() < 5) throw malformed("reply");
    r.type = static_cast<std::uint8_t>(b[0]);
    r.id = get32(b.data() + 1);
    r.status = 0;
    r.msg.clear();
    r.data_off = r.data_len = 0;
    if (r.type == fxp::status) {
        if (b.size() < 9) throw malformed("status");
        r.status = get32(b.data() + 5);
        if (b.size() >= 13) {  // the message is optional in v3 servers that predate it
            std::uint32_t mlen = get32(b.data() + 9);
            if (mlen <= b.size() - 13) r.msg.assign(b.data() + 13, mlen);
        }
    } else if (r.type == fxp::data || r.type == fxp::handle) {
        if (b.size() < 9) throw malformed("reply");
        r.data_off = 9;
        r.data_len = get32(b.data() + 5);
        if (r.data_len > b.size() - 9) throw malformed("reply length");
    } else if (r.type == fxp::attrs) {
        r.data_off = 5;
        r.data_len = b.size() - 5;
    } else {
        throw Error(ExitCode::unavailable,
                    "unexpected sftp reply type " + std::to_string(r.type) + " for " + std::string(what));
    }
}

const SftpReply& SftpWire::receive() {
    char hdr[4];
    read_exact(hdr, 4);
    std::uint32_t len = get32(hdr);
    if (len < 5 || len > max_reply) throw Error(ExitCode::unavailable, "malformed sftp reply for " + what_);
    SftpReply& r = reply_;
    r.body.resize(len);  // the same buffer every time: no fresh pages per 255 KiB reply
    read_exact(r.body.data(), len);
    parse_reply(r, what_);
    if (pending_.erase(r.id) == 0) throw Error(ExitCode::unavailable, "sftp reply to an unknown request for " + what_);
    r.control = control_.erase(r.id) != 0;
    return r;
}

SftpReply SftpWire::await(std::uint32_t id) {
    if (auto it = kept_.find(id); it != kept_.end()) {
        SftpReply r = std::move(it->second);
        kept_.erase(it);
        return r;
    }
    while (pending_.count(id) != 0) {
        const SftpReply& r = receive();
        if (r.id == id) return r;
        if (r.control) keep(r);  // another control request's: asked for later
        // else a read or write the caller gave up on (it failed midway): nothing wants it
    }
    throw Error(ExitCode::unavailable, "sftp: no request " + std::to_string(id) + " outstanding for " + what_);
}

SftpAttrs SftpWire::attrs(const SftpReply& r) {
    auto bad = [] { return Error(ExitCode::unavailable, "malformed sftp attributes"); };
    std::string_view a = r.payload();
    std::size_t at = 0;
    auto u32 = [&] {
        if (a.size() - at < 4) throw bad();
        std::uint32_t v = get32(a.data() + at);
        at += 4;
        return v;
    };
    SftpAttrs out;
    std::uint32_t flags = u32();
    if (flags & attr_size) {
        std::uint64_t hi = u32();
        out.size = (hi << 32) | u32();
    }
    if (flags & attr_uidgid) u32(), u32();
    if (flags & attr_perm) {
        std::uint32_t perm = u32();
        out.mode = perm & 07777u;
        out.is_dir = (perm & 0170000u) == 0040000u;
    }
    if (flags & attr_time) {
        u32();
        out.mtime = u32();
    }
    return out;  // extended attributes (flag 0x80000000) follow; nothing here needs them
}

WireHandle::~WireHandle() {
    if (!open_) return;
    try {
        if (ssh_is_connected(wire_.sftp()->session)) wire_.await(wire_.send_close(handle_));
    } catch (const Error&) {
        // The connection failed: the server closes the handle with the channel.
    }
}

}  // namespace tn::ssh
