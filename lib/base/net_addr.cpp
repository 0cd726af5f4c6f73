// Address and forward-spec parsing, OpenSSH syntax, with errors that quote the offending part.
#include "base/net_addr.hpp"

#include <vector>

#include "base/error.hpp"
#include "base/strings.hpp"

namespace tn {

namespace {

[[noreturn]] void fail(std::string_view what, std::string_view whole) {
    throw ParseError(std::string(what) + " in \"" + std::string(whole) + "\"");
}

void check_host(std::string_view host, std::string_view whole) {
    if (host.empty()) fail("missing host", whole);
    for (unsigned char c : host) {
        if (c <= ' ' || c == 0x7f || c == '/' || c == '@' || c == '[' || c == ']')
            fail("invalid character in host \"" + std::string(host) + "\"", whole);
    }
}

// Splits on ':' outside brackets; a bracketed field loses its brackets and must look like IPv6.
std::vector<std::string> split_fields(std::string_view s, std::string_view whole) {
    std::vector<std::string> out;
    std::string cur;
    bool bracket = false, was_bracketed = false;
    for (char c : s) {
        if (c == '[' && !bracket && cur.empty()) {
            bracket = true;
            was_bracketed = true;
        } else if (c == ']' && bracket) {
            bracket = false;
        } else if (c == ':' && !bracket) {
            if (was_bracketed && cur.find(':') == std::string::npos)
                fail("bracketed address \"[" + cur + "]\" is not IPv6", whole);
            out.push_back(cur);
            cur.clear();
            was_bracketed = false;
        } else if (was_bracketed && !bracket) {
            fail("unexpected text after ']'", whole);
        } else {
            cur += c;
        }
    }
    if (bracket) fail("missing ']'", whole);
    out.push_back(cur);
    return out;
}

}  // namespace

std::string HostPort::str() const {
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
}

std::uint16_t parse_port(std::string_view s, std::string_view whole, bool allow_zero) {
    if (s.empty()) fail("missing port", whole);
    auto v = parse_int(s, allow_zero ? 0 : 1, 65535);
    if (!v) fail("invalid port \"" + std::string(s) + "\" (must be " + (allow_zero ? "0" : "1") + "-65535)", whole);
    return static_cast<std::uint16_t>(*v);
}

HostPort parse_host_port(std::string_view s) {
    auto f = split_fields(s, s);
    if (f.size() != 2) fail(f.size() < 2 ? "missing port (expected host:port)" : "too many ':' (use [v6]:port for IPv6)", s);
    check_host(f[0], s);
    return HostPort{f[0], parse_port(f[1], s)};
}

SshTarget parse_ssh_target(std::string_view s) {
    SshTarget t;
    std::string_view rest = s;
    auto at = s.rfind('@');
    if (at != std::string_view::npos) {
        t.user = std::string(s.substr(0, at));
        if (t.user.empty()) fail("empty user before '@'", s);
        for (unsigned char c : t.user)
            if (c <= ' ' || c == ':' || c == '/') fail("invalid character in user \"" + t.user + "\"", s);
        rest = s.substr(at + 1);
    }
    if (rest.empty()) fail("missing host", s);
    // A bare IPv6 address (several ':' and no brackets) has no port part.
    if (rest.front() != '[' && rest.find(':') != rest.rfind(':')) {
        check_host(rest, s);
        t.host = std::string(rest);
        return t;
    }
    auto f = split_fields(rest, s);
    if (f.size() > 2) fail("too many ':'", s);
    check_host(f[0], s);
    t.host = f[0];
    if (f.size() == 2) t.port = parse_port(f[1], s);
    return t;
}

ForwardSpec parse_forward_spec(std::string_view s) {
    auto f = split_fields(s, s);
    ForwardSpec spec;
    std::size_t i = 0;
    if (f.size() == 4) {
        spec.bind = f[0];
        if (spec.bind.empty()) fail("empty bind address (omit it or use '*')", s);
        if (spec.bind != "*") check_host(spec.bind, s);
        i = 1;
    } else if (f.size() != 3) {
        fail("expected [bind:]port:host:hostport", s);
    }
    spec.port = parse_port(f[i], s, /*allow_zero=*/true);
    check_host(f[i + 1], s);
    spec.host = f[i + 1];
    spec.host_port = parse_port(f[i + 2], s);
    return spec;
}

DynamicSpec parse_dynamic_spec(std::string_view s) {
    auto f = split_fields(s, s);
    DynamicSpec d;
    if (f.size() == 2) {
        d.bind = f[0];
        if (d.bind.empty()) fail("empty bind address (omit it or use '*')", s);
        if (d.bind != "*") check_host(d.bind, s);
        d.port = parse_port(f[1], s);
    } else if (f.size() == 1) {
        d.port = parse_port(f[0], s);
    } else {
        fail("expected [bind:]port", s);
    }
    return d;
}

}  // namespace tn
