// put/get through a --persist master: the client sends the (absolute) local and the remote paths,
// the master moves the files on its session's SFTP channel (kept open between requests) and draws
// the progress bar on the client's stderr, which rides along as a descriptor.
//   request payload after the kind: u32 flags (1 recursive, 2 resume, 4 progress bar, 8 preserve
//           modes, 32 stream: put - / get -, bits 16..24 the client's umask),
//           u32 count + local paths, u32 count + remote paths; fds: the client's stderr, and with
//           32 its stdin (put -) or stdout (get -), which the master reads or writes directly.
//           A master older than 32 refuses the second descriptor ("wrong descriptors").
//   reply:  zero or more "note MESSAGE" lines, then "ok FILES BYTES" | "error CODE MESSAGE".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/unique_fd.hpp"
#include "options.hpp"
#include "persist_wire.hpp"
#include "ssh/session.hpp"
#include "ssh/sftp.hpp"
#include "ssh/transfer.hpp"

namespace tn::exec {

struct PersistTransferRequest {
    bool is_put = true;
    ssh::TransferSettings settings;
    bool progress = false;            // draw the bar (on the client's stderr, if it is a TTY)
    std::vector<std::string> local;   // absolute: the master has its own working directory
    std::vector<std::string> remote;
    int stream_fd = -1;  // put - (stdin) / get - (stdout): local is then {"-"}
};

struct PersistTransferResult {
    std::vector<std::string> notes;  // resumed, restarted: for the client's log
    std::uint64_t files = 0, bytes = 0;
};

// Runs the transfer through the target's master, starting one when none answers, and once more on
// a fresh master when the old one's session turned out dead. Throws tn::Error as the transfer would.
PersistTransferResult persist_transfer(const Target& t, const SshOptions& ssh, int idle_s,
                                       const PersistTransferRequest& req);

// Master side: serves one put/get request and returns the reply payload. `sftp` is opened on first
// use and dropped after a failure (requests may still be in flight on it). `conn` is the client's
// socket: a client that goes away (Ctrl-C) stops the transfer, leaving the temp file for --resume.
std::string serve_transfer(ssh::Session& session, std::optional<ssh::Sftp>& sftp, bool is_put, wire::Reader& r,
                           std::vector<UniqueFd>& fds, int conn);

}  // namespace tn::exec
