// Remote command execution on one session: streams stdout/stderr as they arrive, forwards stdin,
// enforces a deadline, and reports how the remote command ended.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ssh/handles.hpp"

namespace tn::ssh {

class Session;

// What the remote prints before the command proper starts, read and answered here (sudo's password
// prompt): while it is not done(), stdin is not forwarded (not even its EOF) and stderr goes through
// on_stderr, which returns what the err sink gets and may call `reply` to write to the channel.
struct PreambleStep {
    std::string err;           // to pass on to the err sink
    bool close_stdin = false;  // send EOF now (a refused answer must not be followed by another)
};
class ExecPreamble {
public:
    virtual ~ExecPreamble() = default;
    virtual PreambleStep on_stderr(std::string_view chunk, const std::function<void(std::string_view)>& reply) = 0;
    virtual bool done() const = 0;
    // What is still held back when the channel ends (a partial line): passed on then.
    virtual std::string flush() = 0;
};

struct ExecRequest {
    std::string command;  // the remote command line, already quoted for the remote shell
    std::vector<std::pair<std::string, std::string>> env;  // setenv requests, falling back to `export`
    std::string cwd;                                       // empty: the login directory
    int stdin_fd = -1;                                     // -1: send EOF at once (-n)
    std::optional<std::chrono::milliseconds> timeout;      // from the exec request to the exit status
    // Readable when the user interrupted us (an eventfd set by a signal watcher): the signal named by
    // interrupt_signal() ("INT", "TERM") is sent to the remote command, which then has 2 s to end.
    int interrupt_fd = -1;
    std::function<std::string()> interrupt_signal;
    // --tty: a PTY of this size (columns, rows) and TERM is requested before the command. winch_fd
    // (a signalfd for SIGWINCH, read here) becomes readable when the local window changes; then
    // window_size() gives the new size, which is sent as a window-change request.
    std::optional<std::pair<int, int>> pty_size;
    std::string term = "xterm";
    int winch_fd = -1;
    std::function<std::pair<int, int>()> window_size;
    ExecPreamble* preamble = nullptr;  // --sudo: the prompt answered before stdin flows
};

// Called with each chunk as it arrives, in arrival order per stream.
struct ExecSinks {
    std::function<void(std::string_view)> out;
    std::function<void(std::string_view)> err;
};

struct ExecResult {
    std::optional<int> exit_status;  // from exit-status
    std::string signal;              // from exit-signal ("TERM"), empty if none
    bool timed_out = false;
    std::vector<std::string> env_fallback;  // names the server refused to set, sent as `export` instead
};

// Runs the request on a new channel of an authenticated session. Throws tn::Error(unavailable) when
// the channel cannot be opened or the connection drops. The exec request is not waited for: stdin's
// EOF and the wait for output follow at once, and sshd's reply is collected as it arrives.
ExecResult run_command(Session& session, const ExecRequest& req, const ExecSinks& sinks);

// Opens a session channel ahead of need (one round trip), so that a later run_command on it pays
// none: what a --persist master does while it waits for the next request. Null when the server
// refuses the channel (MaxSessions), so the request itself reports why; throws
// tn::Error(unavailable) when the connection is gone.
ChannelPtr open_exec_channel(Session& session);

// run_command on `ready` (from open_exec_channel), or on a new channel when `ready` is null or the
// server has closed it meanwhile.
ExecResult run_command(Session& session, ChannelPtr ready, const ExecRequest& req, const ExecSinks& sinks);

// False once the session's connection is known to be gone (as of the last packet read or write):
// lets a caller tell a dropped session from a failure of the request itself.
bool session_connected(Session& session);

// The command line actually sent: `cd` and `export` prefixes for cwd and refused env names.
std::string compose_command(const ExecRequest& req, const std::vector<std::string>& refused_env);

// `command` run under the remote coreutils timeout(1) for `timeout` (its whole process group is
// killed), or as is where timeout(1) is missing: for servers that ignore signal requests.
std::string with_remote_deadline(const std::string& command, std::chrono::milliseconds timeout);

// The tool's exit code for a result: the status, 128+N for a signal, 124 on timeout, 255 if unknown.
int exit_code_for(const ExecResult& r);

// "TERM" -> 15; 0 if unknown.
int signal_number(std::string_view name);

// True for names a POSIX shell accepts in `export NAME=...`.
bool valid_env_name(std::string_view name);

}  // namespace tn::ssh
