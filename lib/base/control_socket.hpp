// The one control-socket helper of every tn daemon (tn-route, tn-vnet, tn-tun, tn-forward):
// a private state directory, a Unix socket only its owner can connect to, and a peer check on every
// connection, so that another local user can never reach a daemon's status or its commands. POSIX
// only: each tool wraps the listening descriptor in its own event loop.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>

#include "base/unique_fd.hpp"

namespace tn {

// `dir` must be a directory (not a symlink) owned by this user (effective uid) and closed to group and
// others (no bit of 077), as ssh asks of ~/.ssh: else tn::Error(config, exit 78) naming the
// directory, its owner or mode, and the chown/chmod that fixes it; tn::Error(config) too when it
// cannot be stat-ed.
void require_private_dir(const std::filesystem::path& dir);

// Creates the socket's directory (mode 0700; its parent must exist) when it is missing, checks it with require_private_dir,
// removes a stale socket at `path`, binds a SOCK_STREAM Unix socket there under umask 077 (the file
// is 0600 from its birth: no window in which another user could connect), pins 0600 whatever the
// umask was, and listens. Returns the listening descriptor (close-on-exec, blocking: the caller's
// event loop sets what it needs). Throws tn::Error(config) for the directory, tn::Error(io) when
// the socket cannot be made.
UniqueFd bind_control_socket(const std::filesystem::path& path);

// The uid of the peer of an accepted control connection when it is neither this process's
// effective uid nor root (who can read our files anyway); nullopt for the owner. A peer whose
// credentials cannot be read counts as foreign (uid -1). Check every connection: the file mode
// alone would not survive a careless chmod.
std::optional<uid_t> foreign_peer(int fd);
inline bool peer_is_owner(int fd) { return !foreign_peer(fd); }

}  // namespace tn
