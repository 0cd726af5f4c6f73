// Hop: a direct-tcpip channel relayed to a socket pair by a thread of its own.
#include "ssh/jump.hpp"

#include <fcntl.h>
#include <libssh/libssh.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.hpp"

namespace tn::ssh {

Hop::Hop(Session via, const std::string& host, int port) : via_(std::move(via)) {
    ssh_session s = via_.raw();
    channel_.reset(ssh_channel_new(s));
    if (!channel_ || ssh_channel_open_forward(channel_.get(), host.c_str(), port, "127.0.0.1", 0) != SSH_OK)
        throw Error(ExitCode::unavailable, "jump host " + via_.endpoint() + " cannot reach " + host + ":" +
                                               std::to_string(port) + ": " + ssh_get_error(s));
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        throw Error(ExitCode::io, std::string("socketpair: ") + std::strerror(errno));
    ours_.reset(sv[0]);
    theirs_.reset(sv[1]);
    struct stat st {};
    if (::fstat(theirs_.get(), &st) == 0) theirs_inode_ = st.st_ino;
    ::fcntl(ours_.get(), F_SETFL, ::fcntl(ours_.get(), F_GETFL) | O_NONBLOCK);
    stop_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!stop_) throw Error(ExitCode::io, std::string("eventfd: ") + std::strerror(errno));
    thread_ = std::thread([this] { relay(); });
}

Hop::~Hop() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(stop_.get(), &one, sizeof one);
    if (thread_.joinable()) thread_.join();
    // Measured: libssh 0.10 does not close it. Should a later libssh do so, the number may name
    // another file by now: close it only while it is still the socket made here.
    struct stat st {};
    if (::fstat(theirs_.get(), &st) != 0 || st.st_ino != theirs_inode_) (void)theirs_.release();
}

// Both directions until either side ends or the destructor says stop. Bytes from the channel wait
// in `pending` until the socket takes them, and no more is read from the channel meanwhile, so the
// channel's window (not memory) bounds what the next session has not read yet.
void Hop::relay() {
    ssh_session s = via_.raw();
    ssh_channel ch = channel_.get();
    std::string pending;
    char buf[65536];
    bool sock_open = true, channel_open = true, eof_to_sock = false;
    while (sock_open || channel_open) {
        while (channel_open && pending.empty()) {
            int n = ssh_channel_read_nonblocking(ch, buf, sizeof buf, 0);
            if (n > 0) {
                pending.assign(buf, static_cast<std::size_t>(n));
            } else {
                if (n == SSH_ERROR || ssh_channel_is_eof(ch) || ssh_channel_is_closed(ch)) channel_open = false;
                break;
            }
        }
        while (!pending.empty()) {
            ssize_t w = ::send(ours_.get(), pending.data(), pending.size(), MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0 && errno == EAGAIN) break;
            if (w < 0) return;  // the next session is gone
            pending.erase(0, static_cast<std::size_t>(w));
        }
        if (!channel_open && pending.empty() && !eof_to_sock) {
            ::shutdown(ours_.get(), SHUT_WR);  // the far end closed: the next session reads EOF
            eof_to_sock = true;
            if (!sock_open) return;
        }
        // Data libssh already holds for the channel does not make its socket readable: do not sleep then.
        bool buffered = channel_open && pending.empty() && ssh_channel_poll(ch, 0) > 0;
        pollfd fds[3] = {{sock_open ? ours_.get() : -1, static_cast<short>(POLLIN | (pending.empty() ? 0 : POLLOUT)), 0},
                         {ssh_get_fd(s), POLLIN, 0},
                         {stop_.get(), POLLIN, 0}};
        if (!sock_open && !pending.empty()) fds[0] = {ours_.get(), POLLOUT, 0};
        if (::poll(fds, 3, buffered ? 0 : 1000) < 0 && errno != EINTR) return;
        if (fds[2].revents & POLLIN) return;
        if (sock_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t r = ::recv(ours_.get(), buf, sizeof buf, 0);
            if (r > 0) {
                // Blocking: waits for the channel's window while libssh keeps reading what arrives.
                if (ssh_channel_write(ch, buf, static_cast<uint32_t>(r)) != r) return;
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                sock_open = false;
                if (channel_open) ssh_channel_send_eof(ch);
            }
        }
        if (!ssh_is_connected(s)) channel_open = false;
    }
}

std::optional<std::string> proxy_jump_from_command(const std::string& cmd) {
    std::istringstream in(cmd);
    std::vector<std::string> w;
    for (std::string t; in >> t;) w.push_back(t);
    if (w.size() < 4 || w[0] != "ssh" || w[w.size() - 3] != "-W" || w[w.size() - 2] != "'[%h]:%p'") return std::nullopt;
    std::string user, port;
    for (std::size_t i = 1; i + 3 < w.size(); i += 2) {
        if (w[i] == "-l") user = w[i + 1];
        else if (w[i] == "-p") port = w[i + 1];
        else if (w[i] == "-J") throw Error(ExitCode::config, "ProxyJump with several hops is not supported (only one)");
        else return std::nullopt;
    }
    const std::string& host = w[w.size() - 1];
    bool v6 = host.find(':') != std::string::npos;
    return (user.empty() ? "" : user + "@") + (v6 ? "[" + host + "]" : host) + (port.empty() ? "" : ":" + port);
}

std::optional<std::string> config_proxy_jump(const ClientConfig& cfg) {
    auto conf = cfg.ssh_config_path();
    std::error_code ec;
    if (!std::filesystem::exists(conf, ec)) return std::nullopt;
    SessionPtr sp(ssh_new());
    if (!sp) throw Error(ExitCode::io, "cannot allocate an ssh session");
    ssh_session s = sp.get();
    bool no = false;
    if (ssh_options_set(s, SSH_OPTIONS_SSH_DIR, cfg.ssh_dir.c_str()) < 0 ||
        ssh_options_set(s, SSH_OPTIONS_HOST, cfg.host.c_str()) < 0 ||
        ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no) < 0 || ssh_options_parse_config(s, conf.c_str()) < 0)
        throw Error(ExitCode::config, "cannot parse ssh config " + conf.string() + ": " + ssh_get_error(s));
    char* v = nullptr;
    if (ssh_options_get(s, SSH_OPTIONS_PROXYCOMMAND, &v) != SSH_OK || v == nullptr) return std::nullopt;
    std::string cmd(v);
    ssh_string_free_char(v);
    return proxy_jump_from_command(cmd);
}

}  // namespace tn::ssh
