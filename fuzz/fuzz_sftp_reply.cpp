// tn-exec's pipelined SFTP replies (lib/ssh/sftp_wire) as a hostile server may send them: any bytes as
// one reply's body. parse_reply either refuses them with tn::Error or leaves a payload inside the body;
// an ATTRS reply's attributes are then read field by field and never past the payload's end.
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/error.hpp"
#include "ssh/sftp_wire.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    tn::ssh::SftpReply r;
    r.body.assign(reinterpret_cast<const char*>(data), size);
    try {
        tn::ssh::parse_reply(r, "fuzz");
    } catch (const tn::Error& e) {
        if (e.code() != tn::ExitCode::unavailable) __builtin_trap();
        return 0;
    }
    if (r.data_off > r.body.size() || r.data_len > r.body.size() - r.data_off) __builtin_trap();
    if (r.msg.size() > r.body.size()) __builtin_trap();
    if (r.type == tn::ssh::fxp::attrs) {
        try {
            auto a = tn::ssh::SftpWire::attrs(r);
            if (a.mode > 07777) __builtin_trap();
        } catch (const tn::Error& e) {
            if (e.code() != tn::ExitCode::unavailable) __builtin_trap();
        }
    }
    return 0;
}
