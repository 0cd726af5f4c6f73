// UploadWindow: the number of SFTP writes an upload keeps outstanding grows while nothing queues
// and shrinks when writes wait, within [start, max].
#include <catch2/catch.hpp>

#include "ssh/sftp_pipe.hpp"

using tn::ssh::UploadWindow;

TEST_CASE("UploadWindow starts low and grows one write per reply while replies stay as fast as the fastest") {
    UploadWindow w(2, 16);
    CHECK(w.size() == 2);
    for (int i = 0; i < 5; ++i) w.on_reply(0.010, w.size());
    CHECK(w.size() == 7);
    for (int i = 0; i < 50; ++i) w.on_reply(0.010, w.size());
    CHECK(w.size() == 16);  // never past the maximum
}

TEST_CASE("UploadWindow gives writes back when they queue, never below its start") {
    UploadWindow w(2, 16);
    for (int i = 0; i < 20; ++i) w.on_reply(0.010, w.size());
    REQUIRE(w.size() == 16);
    // Replies now take twice the fastest with 16 out: 8 writes' worth waits.
    w.on_reply(0.020, 16);
    CHECK(w.size() == 15);
    for (int i = 0; i < 40; ++i) w.on_reply(0.020, w.size());
    CHECK(w.size() == 4);  // 4 x (1 - 1/2) = 2 queued: no longer more than two
    for (int i = 0; i < 40; ++i) w.on_reply(1.0, w.size());
    CHECK(w.size() == 2);
}

TEST_CASE("UploadWindow holds steady between one and two queued writes") {
    UploadWindow w(2, 16);
    for (int i = 0; i < 6; ++i) w.on_reply(0.010, w.size());
    REQUIRE(w.size() == 8);
    w.on_reply(0.0125, 8);  // 8 x 0.2 = 1.6 queued
    CHECK(w.size() == 8);
}

TEST_CASE("UploadWindow keeps sane bounds for odd limits") {
    CHECK(UploadWindow(0, 16).size() == 1);
    CHECK(UploadWindow(8, 4).size() == 4);
    UploadWindow w(1, 0);
    w.on_reply(0.0, 1);
    CHECK(w.size() == 1);
}
