// tn-exec ls|stat|mkdir|rm|mv|chmod|ln|df: remote file operations over SFTP on one host.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/log.hpp"
#include "options.hpp"
#include "ssh/sftp_fs.hpp"

// Declared, not included: CLI11 2.1 is header-only and cost about 8 s of CPU (-O2 -g) in each
// file that includes it; persist*.cpp and the unit tests include this header without using CLI.
namespace CLI {
class App;
}

namespace tn::exec {

struct FsOptions {
    bool long_format = false;  // ls -l
    bool recursive = false;    // ls -r, rm -r
    bool parents = false;      // mkdir -p
    bool symbolic = false;     // ln -s
    std::vector<std::string> args;
};

// The subcommands, registered on app; `which` names the one that ran (empty: none of them).
struct FsCommands {
    std::vector<CLI::App*> subs;
    CLI::App* chosen() const;
};

// add_ssh: the shared connection options, added to each subcommand by the caller's function.
FsCommands add_fs_commands(CLI::App& app, FsOptions& o, SshOptions& ssh,
                           const std::function<void(CLI::App*)>& add_ssh);

// Runs the chosen operation. Exit: 0 done; 1 a path is missing; 77 permission denied; 74 another
// refusal of the remote file system; 255 a failure of tn-exec's own (connection, auth, host key).
int fs_main(const std::string& op, const SshOptions& ssh, const FanOut& fan, const FsOptions& o,
            const log::Logger& log);

// One operation on one host's RemoteFs, every output line (or JSON record) through `write`: what
// fs_main and a --persist master both run. Throws ssh::FsError (1/77/74) or tn::Error.
void run_fs_op(const std::string& op, const FsOptions& o, bool json, const std::string& label, ssh::RemoteFs& fs,
               const std::vector<std::string>& plain, const std::vector<std::string>& paths,
               const std::function<void(const std::string&)>& write);

// A remote name for a text line: backslash and control bytes escaped (\\, \n, \xNN), so a name with
// a newline stays on one line and cannot be mistaken for another name.
std::string escape_name(const std::string& name);

}  // namespace tn::exec
