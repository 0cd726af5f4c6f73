// The process exit codes of SPEC §2 (sysexits), in one place for every tool.
#pragma once

namespace tn {

enum class ExitCode : int {
    ok = 0,
    check_failed = 1,   // a --check said no
    usage = 64,         // bad command line
    data = 65,          // bad input data
    unavailable = 69,   // peer or host unavailable
    io = 74,            // local I/O error
    temp_fail = 75,     // temporary failure, retry later
    no_perm = 77,       // auth or permission refused, host key mismatch
    config = 78,        // config error
    remote_own = 255,   // tn-exec: a failure of its own, as ssh does
};

constexpr int to_int(ExitCode c) { return static_cast<int>(c); }

}  // namespace tn
