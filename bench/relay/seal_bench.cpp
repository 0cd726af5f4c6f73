// Micro-benchmark of the sealed-link record layer (lib/relay/seal): seal + open throughput per
// cipher and record size, one core, no I/O. Built and run by bench_relay.py --parts seal.
#include <chrono>
#include <cstdio>
#include <vector>

#include "relay/seal.hpp"

using namespace tn::relay;

int main() {
    const std::size_t total = std::size_t(1) << 30;  // 1 GiB through each combination
    std::vector<std::uint8_t> plain(kRecordMax, 0x5a), rec(kRecordMax + kRecordOverhead), out(kRecordMax);
    for (auto c : {Cipher::aes128_gcm, Cipher::aes256_gcm}) {
        for (std::size_t size : {std::size_t(16384), kRecordMax}) {
            auto key = random_link_key();
            LinkSeal a(c, key, Side::use), b(c, key, Side::serve);
            double seal_s = 0, open_s = 0;
            for (std::size_t done = 0; done < total; done += size) {
                auto t0 = std::chrono::steady_clock::now();
                auto n = a.tx.seal(std::span(plain.data(), size), rec.data());
                auto t1 = std::chrono::steady_clock::now();
                b.rx.open(std::span(rec.data(), n), out.data());
                auto t2 = std::chrono::steady_clock::now();
                seal_s += std::chrono::duration<double>(t1 - t0).count();
                open_s += std::chrono::duration<double>(t2 - t1).count();
            }
            std::printf("%s records of %2zu KiB: seal %.2f GB/s, open %.2f GB/s\n",
                        c == Cipher::aes128_gcm ? "AES-128-GCM" : "AES-256-GCM", size / 1024, total / seal_s / 1e9,
                        total / open_s / 1e9);
        }
    }
}
