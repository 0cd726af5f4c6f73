// Pipelined SFTP reads and writes: many requests in flight on one open file, so throughput does not
// collapse with latency. libssh 0.10 has no async write API, so both directions speak the SFTP v3
// READ/WRITE/DATA/STATUS packets directly on the sftp channel (SftpWire).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "ssh/sftp_wire.hpp"

struct sftp_file_struct;

namespace tn::ssh {

struct PipeLimits {
    // Reads, and the writes of a large upload: OpenSSH's sftp-server drops the channel on a
    // 262144-byte packet; 261120 bytes of data fit.
    std::uint32_t chunk = 261120;
    unsigned in_flight = 16;  // reads outstanding from the start: 4 MiB, more than a loopback or LAN needs
    // The first small_upload bytes of an upload (all of a small one) go in 32 KiB writes, as OpenSSH's
    // sftp sends them. sftp-server handles a request only once all of it is in its input buffer, which
    // grows to that size 16 KiB read by 16 KiB read, each step an allocate-copy-free (and fresh pages)
    // in a new session's sshd and sftp-server: a session's first 1 MiB upload in 255 KiB writes cost
    // the server 40-50 ms of CPU, in 32 KiB writes 13-21 ms (bench/exec part e). A large upload then
    // goes on in 255 KiB writes, which move more per request (part b).
    std::uint32_t write_chunk = 32768;
    std::uint64_t small_upload = 4u << 20;
    // Each phase's writes outstanding start at its start_ value and adapt up to its maximum (see
    // UploadWindow): 8 to 64 small writes (256 KiB to 2 MiB), 2 to in_flight large ones.
    unsigned start_in_flight = 8, write_in_flight = 64;
    unsigned large_start_in_flight = 2;
};

// How many SFTP writes an upload keeps outstanding, adapted like TCP Vegas. Writes queued beyond
// what the path needs wait in sshd's buffer for the sftp-server pipe, and OpenSSH grows that buffer
// one channel packet (32 KiB) at a time by allocate-copy-free (recallocarray), each step a fresh mmap
// above glibc's threshold: filling a new connection's 2 MiB channel window that way cost sshd
// 1.2-1.5 s of CPU per first 64 MiB upload on loopback (perf: memmove and page faults), for 0.3 s of
// useful work. So start low, add one write while replies come back as fast as the fastest did
// (nothing queued), and drop one when more than two writes' worth waits; a long path still grows to
// the maximum, one write per reply.
class UploadWindow {
public:
    UploadWindow(unsigned start, unsigned max)
        : max_(std::max(1u, max)), floor_(std::max(1u, std::min(start, max_))), size_(floor_) {}

    unsigned size() const { return size_; }
    // A reply took `rtt_seconds` while `outstanding` writes (itself included) were in flight.
    void on_reply(double rtt_seconds, std::size_t outstanding) {
        if (min_rtt_ <= 0 || rtt_seconds < min_rtt_) min_rtt_ = rtt_seconds;
        // Writes waiting beyond the path's own: outstanding x (1 - fastest / this one).
        double queued = rtt_seconds > 0 ? static_cast<double>(outstanding) * (1.0 - min_rtt_ / rtt_seconds) : 0.0;
        if (queued < 1.0 && size_ < max_) ++size_;
        else if (queued > 2.0 && size_ > floor_) --size_;
    }

private:
    unsigned max_, floor_, size_;
    double min_rtt_ = 0;
};

// Reads local bytes at an offset into buf; returns the count (0 at end). Throws tn::Error on failure.
using PipeSource = std::function<std::size_t(std::uint64_t offset, char* buf, std::size_t len)>;
// Receives remote bytes at an offset; calls may come out of order after a short read.
using PipeSink = std::function<void(std::uint64_t offset, const char* data, std::size_t len)>;
using PipeProgress = std::function<void(std::uint64_t bytes)>;

// Called once, when the last request of a transfer has gone out and its replies are still to come:
// requests sent here (a close, say) ride behind them instead of waiting a round trip of their own.
using PipeAfterLast = std::function<void()>;

class SftpPipe {
public:
    // `handle` is the open remote file's SFTP handle (handle_of for one libssh opened).
    SftpPipe(SftpWire& wire, std::string handle, PipeLimits limits = {});

    // Writes the source from `offset` until it returns 0; returns the end offset. `after_last` runs
    // only when every write went out and none has failed yet.
    std::uint64_t upload(std::uint64_t offset, const PipeSource& src, const PipeProgress& progress,
                         const PipeAfterLast& after_last = {});
    // Reads [offset, end) or until the remote EOF; returns the number of bytes delivered. With
    // `after_last` (a close of the handle, say), a short read after it ran is taken as the file's end
    // instead of being asked for again: only right with servers that answer a read in full up to EOF
    // (OpenSSH's sftp-server, which says so with limits@openssh.com).
    std::uint64_t download(std::uint64_t offset, std::uint64_t end, const PipeSink& sink, const PipeProgress& progress,
                           const PipeAfterLast& after_last = {});

private:
    [[noreturn]] void fail_status(std::uint32_t code, const std::string& msg, const char* op);

    SftpWire& wire_;
    std::string handle_;
    PipeLimits limits_;
};

// The SFTP handle of a file libssh opened.
std::string handle_of(sftp_file_struct* file);

}  // namespace tn::ssh
