// The RAND_METHOD behind BufferedRandom: per-thread 4 KiB buffers drawn from OpenSSL's private DRBG.
// RAND_METHOD is deprecated in OpenSSL 3.0 but is the only hook RAND_bytes still honours before
// reaching the DRBG; without it (OPENSSL_NO_DEPRECATED_3_0) the class installs nothing.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "ssh/buffered_random.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>

#include <atomic>
#include <cstring>
#include <mutex>

namespace tn::ssh {
namespace {

#ifndef OPENSSL_NO_DEPRECATED_3_0

constexpr int kPoolBytes = 4096;
constexpr int kLargestServed = 256;

// Bumped in every forked child, so a buffer filled before the fork is never served in both processes.
std::atomic<unsigned> fork_generation{0};

struct Pool {
    unsigned char bytes[kPoolBytes];
    int left = 0;
    unsigned generation = 0;
    ~Pool() { OPENSSL_cleanse(bytes, sizeof bytes); }
};

int from_drbg(unsigned char* out, int n) {
    EVP_RAND_CTX* drbg = RAND_get0_private(nullptr);
    return drbg != nullptr && EVP_RAND_generate(drbg, out, static_cast<size_t>(n), 0, 0, nullptr, 0) == 1;
}

int buffered_bytes(unsigned char* out, int n) {
    if (n < 0) return 0;
    if (n > kLargestServed) return from_drbg(out, n);
    thread_local Pool pool;
    unsigned gen = fork_generation.load(std::memory_order_relaxed);
    if (pool.generation != gen || pool.left < n) {
        if (!from_drbg(pool.bytes, kPoolBytes)) {
            pool.left = 0;
            return 0;
        }
        pool.left = kPoolBytes;
        pool.generation = gen;
    }
    unsigned char* at = pool.bytes + (kPoolBytes - pool.left);
    std::memcpy(out, at, static_cast<size_t>(n));
    OPENSSL_cleanse(at, static_cast<size_t>(n));
    pool.left -= n;
    return 1;
}

// RAND_seed/RAND_add feed the DRBG as they would without us.
int add_to_drbg(const void* buf, int num, double /*entropy*/) {
    EVP_RAND_CTX* drbg = RAND_get0_primary(nullptr);
    return drbg != nullptr && num >= 0 &&
           EVP_RAND_reseed(drbg, 0, nullptr, 0, static_cast<const unsigned char*>(buf), static_cast<size_t>(num)) == 1;
}
int seed_drbg(const void* buf, int num) { return add_to_drbg(buf, num, num); }
int drbg_ready() {
    EVP_RAND_CTX* drbg = RAND_get0_private(nullptr);
    return drbg != nullptr && EVP_RAND_get_state(drbg) == EVP_RAND_STATE_READY;
}

const RAND_METHOD kMethod = {seed_drbg, buffered_bytes, nullptr, add_to_drbg, buffered_bytes, drbg_ready};

void forked_child() { fork_generation.fetch_add(1, std::memory_order_relaxed); }

#endif

}  // namespace

BufferedRandom::BufferedRandom() {
#ifndef OPENSSL_NO_DEPRECATED_3_0
    static std::once_flag at_fork;
    std::call_once(at_fork, [] { pthread_atfork(nullptr, nullptr, forked_child); });
    installed_ = RAND_set_rand_method(&kMethod) == 1 && RAND_get_rand_method() == &kMethod;
#endif
}

BufferedRandom::~BufferedRandom() {
#ifndef OPENSSL_NO_DEPRECATED_3_0
    if (installed_) RAND_set_rand_method(nullptr);
#endif
}

}  // namespace tn::ssh
