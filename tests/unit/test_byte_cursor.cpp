// ByteReader/ByteWriter: big-endian round trips, caps on strings and on the whole, and errors (of the
// caller's type) instead of reads past the end.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "base/byte_cursor.hpp"

using Bytes = std::vector<std::uint8_t>;

namespace {
struct Bad : std::runtime_error {
    explicit Bad(const std::string& m) : std::runtime_error(m) {}
};
using Reader = tn::ByteReader<Bad>;
using Writer = tn::ByteWriter<Bytes, Bad>;
}  // namespace

TEST_CASE("integers are big-endian and round-trip") {
    Writer w;
    w.u8(0x01);
    w.u16(0x0203);
    w.u32(0x04050607);
    w.u64(0x08090a0b0c0d0e0fULL);
    auto b = w.take();
    CHECK(b == Bytes{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15});
    Reader r(b);
    CHECK(r.u8() == 0x01);
    CHECK(r.u16() == 0x0203);
    CHECK(r.u32() == 0x04050607);
    CHECK(r.u64() == 0x08090a0b0c0d0e0fULL);
    CHECK(r.remaining() == 0);
    CHECK(r.consumed() == 15);
    CHECK_NOTHROW(r.finish());
}

TEST_CASE("strings carry a u16 or u32 length and round-trip") {
    Writer w;
    w.str16("ab", 8);
    w.str32("xyz", 8);
    w.raw(Bytes{9, 9});
    auto b = w.take();
    CHECK(b == Bytes{0, 2, 'a', 'b', 0, 0, 0, 3, 'x', 'y', 'z', 9, 9});
    Reader r(b);
    CHECK(r.str16(8, "first") == "ab");
    CHECK(r.str32(8, "second") == "xyz");
    CHECK(r.fixed<2>() == std::array<std::uint8_t, 2>{9, 9});
}

TEST_CASE("a read past the end throws the caller's error and moves nothing") {
    Bytes b{0, 1, 2};
    Reader r(b, "request");
    CHECK_THROWS_MATCHES(r.u32(), Bad, Catch::Message("truncated request"));
    CHECK(r.consumed() == 0);
    CHECK(r.u16() == 1);
    CHECK_THROWS_AS(r.u16(), Bad);
    CHECK_THROWS_AS(r.bytes(2), Bad);
    CHECK(r.bytes(1)[0] == 2);
    CHECK_THROWS_AS(r.u8(), Bad);
}

TEST_CASE("a length over the field's cap is refused before any byte is taken") {
    // A hostile u32 length of 4 GiB: refused by the cap, never allocated or read.
    Bytes b{0xff, 0xff, 0xff, 0xff, 'x'};
    Reader r(b);
    CHECK_THROWS_MATCHES(r.str32(1 << 20, "name"), Bad, Catch::Message("name is 4294967295 bytes (cap 1048576)"));
    Bytes c{0, 5, 'a', 'b'};  // within the cap, but longer than what is there
    Reader r2(c);
    CHECK_THROWS_MATCHES(r2.str16(64, "name"), Bad, Catch::Message("truncated payload"));
}

TEST_CASE("trailing bytes fail finish()") {
    Bytes b{0, 1, 7};
    Reader r(b);
    r.u16();
    CHECK_THROWS_MATCHES(r.finish(), Bad, Catch::Message("1 trailing bytes in payload"));
}

TEST_CASE("the writer refuses a string over its cap and a buffer over its total") {
    Writer w;
    CHECK_THROWS_AS(w.str16(std::string(9, 'x'), 8), Bad);
    CHECK_THROWS_AS(w.str16(std::string(0x10000, 'x'), 0x20000), Bad);  // a u16 length cannot say it
    CHECK(w.size() == 0);
    Writer small({}, 5);
    small.u32(1);
    CHECK_THROWS_AS(small.u16(2), Bad);
    CHECK_THROWS_AS(small.str16("", 8), Bad);  // its length alone does not fit
    small.u8(3);
    CHECK(small.take() == Bytes{0, 0, 0, 1, 3});
}

TEST_CASE("a writer appends to what its buffer already holds, and reads a string's bytes") {
    tn::ByteWriter<std::string, Bad> w(std::string("TNX"));
    w.u8('3');
    w.str32("run", 16);
    auto s = w.take();
    CHECK(s == std::string("TNX3\0\0\0\3run", 11));
    tn::ByteReader<Bad> r(std::string_view(s).substr(4), "request");
    CHECK(r.str32(16, "kind") == "run");
}
