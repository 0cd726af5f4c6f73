// ls/stat/mkdir/rm/mv/chmod/ln/df through a --persist master: the client sends the operation, the
// master runs it on its session's SFTP channel and writes the output lines to the client's stdout,
// which rides along as a descriptor.
//   request payload after the kind "fs": op, u32 flags (1 ls -l, 2 -r, 4 mkdir -p, 8 --json), label,
//           u32 count + plain words, u32 count + paths; fds: the client's stdout.
//   reply:  "ok" | "error CODE MESSAGE" (1, 77 and 74 are the file system's answers).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/unique_fd.hpp"
#include "fs_cmd.hpp"
#include "options.hpp"
#include "persist_wire.hpp"
#include "ssh/session.hpp"
#include "ssh/sftp.hpp"

namespace tn::exec {

// Runs the operation through the target's master (starting one when none answers; once more on a
// fresh one when the old one's session turned out dead). Throws ssh::FsError for 1/77/74, else tn::Error.
void persist_fs(const Target& t, const SshOptions& ssh, int idle_s, const std::string& op, const FsOptions& o,
                bool json, const std::vector<std::string>& plain, const std::vector<std::string>& paths);

// Master side: serves one "fs" request; returns the reply payload, throws tn::Error for a failure.
std::string serve_fs(ssh::Session& session, std::optional<ssh::Sftp>& sftp, wire::Reader& r, std::vector<UniqueFd>& fds);

}  // namespace tn::exec
