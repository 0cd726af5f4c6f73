// --persist: one authenticated session per target kept by a background master (`tn-exec __master`),
// which later `tn-exec run|put|get --persist` calls reach through a Unix socket in the state dir, as
// with OpenSSH's ControlMaster. A run passes two output pipes, its interrupt eventfd and its stdin
// as file descriptors (SCM_RIGHTS, in that order) with one request; the master runs the command
// on its session and answers with the result. A put/get has the master move the files.
// Wire format (persist_wire.hpp: "TNX4", u32 payload length, payload; integers big-endian u32,
// strings as u32 length + bytes). The payload starts with the request kind:
//   "run":  command, cwd, timeout-ms (decimal or ""), has-stdin ("0"/"1"), u32 env-count, then
//           name, value for each, sudo-token ("" without --sudo), can-ask-password ("0"/"1");
//           fds: stdout pipe, stderr pipe, interrupt eventfd[, stdin].
//           Reply: one line, "exit N" | "signal NAME" | "timeout" | "error CODE MESSAGE"; before it,
//           with --sudo, the master's password request and the client's answer (persist_sudo.hpp).
//   "put"/"get": see persist_transfer.hpp.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "base/log.hpp"
#include "base/unique_fd.hpp"
#include "options.hpp"
#include "ssh/exec.hpp"

namespace tn::exec {

// The socket a target's master listens on: $STATE/exec-<hash of the connection settings>.sock.
std::filesystem::path persist_socket(const Target& t);

// The target's master, connected; starts one first when none answers (or when `fresh`: the last
// one failed and is on its way out).
UniqueFd connect_master(const Target& t, const SshOptions& ssh, int idle_s, const std::filesystem::path& sock_path,
                        bool fresh);

// One request to the target's master (`exchange` sends it on the socket and reads the reply), starting a
// master when none answers. A master of an older version, which refused the request unread, is replaced
// once (persist_stale.hpp); a master that idled out as we came, or whose session died (tn::Error
// unavailable), once more on a fresh master, unless `may_retry` says the failed exchange consumed
// something it cannot give again (output already shown, our stdin read).
void with_master(const Target& t, const SshOptions& ssh, int idle_s, const std::function<void(int sock)>& exchange,
                 const std::function<bool()>& may_retry = {});

// --sudo through the master: the token the command was wrapped with (sudo.hpp), and the client's
// password source for sudo's prompt (null: none, the command runs `sudo -n`).
struct PersistSudo {
    std::string token;
    std::shared_ptr<PasswordSource> password;
};

// Runs the request through the target's master, starting the master first when none answers.
// Returns the tool's exit code for the command; throws tn::Error for failures of our own.
int persist_run(const Target& t, const SshOptions& ssh, int idle_s, const ssh::ExecRequest& req,
                const ssh::ExecSinks& sinks, const PersistSudo* sudo = nullptr);

// The master process: connects, reports readiness on ready_fd ("ok\n" or "error CODE MESSAGE\n"),
// then serves requests one at a time until it has been idle for idle_s seconds.
int master_main(const std::string& host_spec, const SshOptions& ssh, const std::string& socket_path, int idle_s,
                int ready_fd);

}  // namespace tn::exec
