// Starting the child through the spawn seam (lib/base/spawn), and line splitting.
#include "child.hpp"

#include <fcntl.h>

#include "base/spawn.hpp"

namespace tn::watch {

Spawned spawn_child(const std::vector<std::string>& argv) {
    // A new session, hence also a new process group led by the child: the terminal of `tn-watch run`
    // is not its controlling terminal, so a child that opens /dev/tty (ssh asking for a password) gets
    // an error instead of being stopped by SIGTTIN and hanging the supervisor, and a closed terminal's
    // SIGHUP does not reach it. The seam also starts it with default signals (we block ours for the
    // signalfd and ignore SIGPIPE) and none of our descriptors (the lock, the log, the ready pipe).
    proc::Child c = proc::spawn({.argv = argv,
                                 .own_session = true,
                                 .in = proc::Input::null,
                                 .out = proc::Output::pipe,
                                 .err = proc::Output::pipe});
    // Only our ends are non-blocking: the child keeps ordinary blocking writes.
    for (int fd : {c.out.get(), c.err.get()}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    return Spawned{c.pid, std::move(c.out), std::move(c.err)};
}

void LineSplitter::feed(std::string_view bytes, const Emit& emit) {
    while (!bytes.empty()) {
        auto nl = bytes.find('\n');
        std::size_t take = nl == std::string_view::npos ? bytes.size() : nl;
        std::size_t room = max_line - buf_.size();
        if (take > room) {
            buf_.append(bytes.substr(0, room));
            emit(buf_);
            buf_.clear();
            bytes.remove_prefix(room);
            continue;
        }
        buf_.append(bytes.substr(0, take));
        if (nl == std::string_view::npos) return;
        if (!buf_.empty() && buf_.back() == '\r') buf_.pop_back();
        emit(buf_);
        buf_.clear();
        bytes.remove_prefix(take + 1);
    }
}

void LineSplitter::flush(const Emit& emit) {
    if (!buf_.empty()) emit(buf_);
    buf_.clear();
}

}  // namespace tn::watch
