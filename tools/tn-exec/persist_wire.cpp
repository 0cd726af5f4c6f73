// The --persist socket's framing (persist_wire.hpp): length-capped frames with SCM_RIGHTS descriptors.
#include "persist_wire.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "base/byte_cursor.hpp"
#include "base/error.hpp"

namespace tn::exec::wire {

namespace {

// "TNX4": version 2 added the request kind (run/put/get), 3 the umask and preserve bits of a transfer
// (a version 2 master would keep set-id bits), 4 --sudo on a run (a version 3 master would run the
// sudo command without answering its prompt). Another digit is another version's master,
// which the client replaces (persist_stale.hpp).
constexpr char magic[4] = {'T', 'N', 'X', '4'};

// A short or oversized frame or payload: exit 65 (data), as every persist wire error.
struct DataError : Error {
    explicit DataError(const std::string& m) : Error(ExitCode::data, "persist: " + m) {}
};
using Cursor = ByteReader<DataError>;
using Out = ByteWriter<std::string, DataError>;

std::uint32_t get_u32(const char* p) { return Cursor(std::string_view(p, 4)).u32(); }

}  // namespace

VersionMismatch::VersionMismatch(const std::string& theirs)
    : Error(ExitCode::data, "persist: the other side speaks protocol " + theirs + ", this tn-exec speaks " +
                                std::string(magic, sizeof magic)),
      theirs_(theirs) {}

bool VersionMismatch::newer() const { return theirs_.size() == 4 && theirs_[3] > magic[3]; }

void put_u32(std::string& b, std::uint32_t v) {
    Out w(std::move(b));
    w.u32(v);
    b = w.take();
}

void put_str(std::string& b, std::string_view s) {
    Out w(std::move(b));
    w.str32(s, std::numeric_limits<std::uint32_t>::max());  // send_frame holds the payload to its cap
    b = w.take();
}

void put_strs(std::string& b, const std::vector<std::string>& v) {
    put_u32(b, static_cast<std::uint32_t>(v.size()));
    for (const auto& s : v) put_str(b, s);
}

std::uint32_t Reader::u32() {
    Cursor r(std::string_view(b).substr(pos), "request");
    auto v = r.u32();
    pos += r.consumed();
    return v;
}

std::string Reader::str() {
    Cursor r(std::string_view(b).substr(pos), "request");
    auto s = r.str32(max_payload, "a string");
    pos += r.consumed();
    return s;
}

std::vector<std::string> Reader::strs(std::uint32_t max, const char* what) {
    std::uint32_t n = u32();
    if (n > max) throw DataError(std::string("too many ") + what);
    std::vector<std::string> out;
    for (std::uint32_t i = 0; i < n; ++i) out.push_back(str());
    return out;
}

void send_frame(int sock, const std::string& payload, const std::vector<int>& fds) {
    if (payload.size() > max_payload) throw Error(ExitCode::usage, "persist: request too large");
    std::string buf(magic, 4);
    put_u32(buf, static_cast<std::uint32_t>(payload.size()));
    buf += payload;
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int) * max_fds)]{};
    if (!fds.empty()) {
        std::size_t n = std::min(fds.size(), max_fds);
        msg.msg_control = ctrl;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n);
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * n);
    }
    ssize_t n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n < 0) throw Error(ExitCode::unavailable, std::string("persist: cannot send: ") + std::strerror(errno));
    std::string_view rest(buf.data() + n, buf.size() - static_cast<std::size_t>(n));
    while (!rest.empty()) {
        ssize_t m = ::send(sock, rest.data(), rest.size(), MSG_NOSIGNAL);
        if (m < 0 && errno == EINTR) continue;
        if (m <= 0) throw Error(ExitCode::unavailable, std::string("persist: cannot send: ") + std::strerror(errno));
        rest.remove_prefix(static_cast<std::size_t>(m));
    }
}

std::string recv_frame(int sock, std::vector<UniqueFd>* fds) {
    std::string buf;
    char chunk[65536];
    std::size_t want = 8;
    while (buf.size() < want) {
        iovec iov{chunk, std::min(sizeof chunk, want - buf.size())};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int) * max_fds)]{};
        msg.msg_control = ctrl;
        msg.msg_controllen = sizeof ctrl;
        ssize_t n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw Error(ExitCode::unavailable, "persist: the other side closed the socket");
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < count; ++i) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                if (fds != nullptr && fds->size() < max_fds) fds->emplace_back(fd);
                else ::close(fd);
            }
        }
        buf.append(chunk, static_cast<std::size_t>(n));
        if (want == 8 && buf.size() >= 8) {
            if (std::memcmp(buf.data(), magic, 3) == 0 && buf[3] != magic[3] && buf[3] >= '0' && buf[3] <= '9')
                throw VersionMismatch(buf.substr(0, 4));
            if (std::memcmp(buf.data(), magic, 4) != 0) throw Error(ExitCode::data, "persist: not a tn-exec master");
            std::uint32_t len = get_u32(buf.data() + 4);
            if (len > max_payload) throw Error(ExitCode::data, "persist: frame too large");
            want = 8 + len;
        }
    }
    return buf.substr(8);
}

UniqueFd try_connect(const std::filesystem::path& path) {
    UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.native().size() >= sizeof a.sun_path)
        throw Error(ExitCode::usage, "persist: socket path too long: " + path.string() + " (set TN_STATE_DIR shorter)");
    std::strcpy(a.sun_path, path.c_str());
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return {};
    return s;
}

}  // namespace tn::exec::wire
