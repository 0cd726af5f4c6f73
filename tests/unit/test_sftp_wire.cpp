// SftpWire::attrs: the SFTP v3 ATTRS a pipelined stat answers with (draft-ietf-secsh-filexfer-02, 5),
// read field by field as the flags say; a reply cut short is an error, never a read past its end.
#include <catch2/catch.hpp>

#include "base/error.hpp"
#include "ssh/sftp_wire.hpp"

using tn::ssh::SftpReply;
using tn::ssh::SftpWire;

namespace {

void put32(std::string& b, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<char>(v >> s));
}

SftpReply attrs_reply(const std::string& attrs) {
    SftpReply r;
    r.type = tn::ssh::fxp::attrs;
    r.body = std::string(5, '\0') + attrs;  // type and id, then the attributes
    r.data_off = 5;
    r.data_len = attrs.size();
    return r;
}

}  // namespace

TEST_CASE("SftpWire::attrs reads size, mode, type and mtime past uid and gid") {
    std::string a;
    put32(a, 1 | 2 | 4 | 8);   // size, uid/gid, permissions, times
    put32(a, 1), put32(a, 2);  // size 2^32 + 2
    put32(a, 1000), put32(a, 1000);
    put32(a, 0100640);
    put32(a, 111), put32(a, 1700000000);
    auto got = SftpWire::attrs(attrs_reply(a));
    CHECK(got.size == (1ull << 32) + 2);
    CHECK(got.mode == 0640);
    CHECK_FALSE(got.is_dir);
    CHECK(got.mtime == 1700000000);
}

TEST_CASE("SftpWire::attrs knows a directory and leaves out what the flags leave out") {
    std::string a;
    put32(a, 4);
    put32(a, 040755);
    auto got = SftpWire::attrs(attrs_reply(a));
    CHECK(got.is_dir);
    CHECK(got.mode == 0755);
    CHECK(got.size == 0);
}

TEST_CASE("SftpWire::attrs refuses attributes cut short") {
    std::string a;
    put32(a, 1 | 4);
    put32(a, 0);  // half a size
    CHECK_THROWS_AS(SftpWire::attrs(attrs_reply(a)), tn::Error);
    CHECK_THROWS_AS(SftpWire::attrs(attrs_reply("\x00\x00")), tn::Error);
}

namespace {

SftpReply parsed(const std::string& body) {
    SftpReply r;
    r.body = body;
    tn::ssh::parse_reply(r, "u@h:22:/f");
    return r;
}

std::string head(std::uint8_t type, std::uint32_t id) {
    std::string b(1, static_cast<char>(type));
    put32(b, id);
    return b;
}

}  // namespace

TEST_CASE("parse_reply finds a DATA or HANDLE payload and a STATUS code with its message") {
    std::string d = head(tn::ssh::fxp::data, 0x80000001u);
    put32(d, 3);
    d += "abc";
    auto r = parsed(d);
    CHECK(r.id == 0x80000001u);
    CHECK(r.payload() == "abc");

    std::string s = head(tn::ssh::fxp::status, 7);
    put32(s, tn::ssh::fxp::no_such_file);
    put32(s, 4);
    s += "gone";
    r = parsed(s);
    CHECK(r.is_status());
    CHECK(r.status == tn::ssh::fxp::no_such_file);
    CHECK(r.msg == "gone");

    std::string bare = head(tn::ssh::fxp::status, 8);  // a v3 server may leave the message out
    put32(bare, tn::ssh::fxp::eof);
    CHECK(parsed(bare).status == tn::ssh::fxp::eof);
    CHECK(parsed(bare).msg.empty());
}

TEST_CASE("parse_reply refuses a reply whose lengths point past its end, or of a type no request has") {
    std::string d = head(tn::ssh::fxp::data, 1);
    put32(d, 4);
    d += "abc";  // one byte short
    CHECK_THROWS_AS(parsed(d), tn::Error);
    CHECK_THROWS_AS(parsed(head(tn::ssh::fxp::handle, 1)), tn::Error);  // no length at all
    CHECK_THROWS_AS(parsed(head(tn::ssh::fxp::status, 1)), tn::Error);  // no code
    CHECK_THROWS_AS(parsed("\x65\x00"), tn::Error);                     // shorter than type and id
    CHECK_THROWS_AS(parsed(head(104, 1)), tn::Error);                   // NAME answers nothing sent here
    std::string s = head(tn::ssh::fxp::status, 2);
    put32(s, tn::ssh::fxp::failure);
    put32(s, 100);  // a message length past the end: the code stands, the message is dropped
    s += "x";
    CHECK(parsed(s).status == tn::ssh::fxp::failure);
    CHECK(parsed(s).msg.empty());
}
