// A hop through a jump host (-J), for libssh 0.10, which has no ProxyJump of its own: a direct-tcpip
// channel on an authenticated session to the jump host, relayed by a thread to one end of a socket
// pair; the next session runs its SSH over the other end (SSH_OPTIONS_FD), so its host key and login
// are checked end to end, as with OpenSSH's ProxyJump. The jump host sees only encrypted bytes.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "base/unique_fd.hpp"
#include "ssh/handles.hpp"
#include "ssh/session.hpp"

namespace tn::ssh {

class Hop {
public:
    // Opens the channel to host:port through `via` (from now on used only by the relay thread).
    // Throws tn::Error(unavailable) naming the jump host when it refuses the channel.
    Hop(Session via, const std::string& host, int port);
    ~Hop();  // stops the relay, closes the channel and the jump session
    Hop(const Hop&) = delete;
    Hop& operator=(const Hop&) = delete;

    // The socket end the next session connects over. libssh 0.10 leaves a socket given by
    // SSH_OPTIONS_FD open when it frees the session, so the Hop closes it (it outlives the session).
    int socket() const { return theirs_.get(); }
    const Session& via() const { return via_; }

private:
    void relay();

    Session via_;
    ChannelPtr channel_;  // after via_: freed first
    UniqueFd ours_, theirs_, stop_;
    unsigned long theirs_inode_ = 0;  // to close theirs_ only while it is still our socket
    std::thread thread_;
};

// The ProxyJump that the ssh config gives cfg.host, as "[user@]host[:port]"; nullopt when there is
// none. libssh 0.10 turns ProxyJump into an OpenSSH ProxyCommand, `ssh [-l U] [-p P] [-J MORE] -W
// '[%h]:%p' H`, read back here, so the hop is ours (host keys checked by us, no ssh binary needed).
// A chain of several hops throws tn::Error(config): only one hop is supported.
std::optional<std::string> config_proxy_jump(const ClientConfig& cfg);

// "ssh -l U -p P -W '[%h]:%p' H" -> "U@H:P"; nullopt for any other ProxyCommand. Pure, for tests.
std::optional<std::string> proxy_jump_from_command(const std::string& proxy_command);

}  // namespace tn::ssh
