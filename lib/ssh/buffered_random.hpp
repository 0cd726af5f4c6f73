// BufferedRandom: OpenSSL's RAND_bytes served from a per-thread buffer that OpenSSL's own DRBG fills.
//
// Why: libssh asks for 4–19 bytes of padding for every packet it sends. In OpenSSL 3.0 each small
// request takes the DRBG's lock, a fork check (a getpid() system call) and a CTR-DRBG rekey; perf puts
// that at 11% of tn-forward's CPU at 5 Gbit/s, more than the copies. Drawing 4 KiB at a time keeps
// the same generator (the private DRBG, so keys come from it as before) and the same output quality.
// Served bytes are wiped from the buffer, requests over 256 bytes go straight to the DRBG, and a forked
// child throws its inherited buffer away (pthread_atfork), so parent and child never share bytes.
#pragma once

namespace tn::ssh {

// Installs the buffered method for the life of the object (one per process, in main). If OpenSSL
// was built without the RAND_METHOD hook, nothing changes and installed() is false.
class BufferedRandom {
public:
    BufferedRandom();
    ~BufferedRandom();
    BufferedRandom(const BufferedRandom&) = delete;
    BufferedRandom& operator=(const BufferedRandom&) = delete;

    bool installed() const { return installed_; }

private:
    bool installed_ = false;
};

}  // namespace tn::ssh
