// How a relayed link ended (Pump, RecordRelay): a kind the caller branches on, and the detail it logs.
#pragma once

#include <cstdint>
#include <string>

namespace tn::relay {

struct LinkEnd {
    enum class Kind : std::uint8_t {
        clean,      // both directions ended with their EOF (records): the link may be reused
        protocol,   // a bad record from the link's other end
        truncated,  // a sealed link closed without its EOF record, or inside a record
        io,         // a socket error, or a local resource ran out
        aborted,    // the caller ended it (abort)
    };
    Kind kind = Kind::clean;
    std::string detail;

    static LinkEnd protocol(std::string d) { return {Kind::protocol, std::move(d)}; }
    static LinkEnd truncated(std::string d) { return {Kind::truncated, std::move(d)}; }
    static LinkEnd io(std::string d) { return {Kind::io, std::move(d)}; }
    static LinkEnd aborted(std::string d) { return {Kind::aborted, std::move(d)}; }
    bool clean() const { return kind == Kind::clean; }
    // The other end broke the record stream: worth a warning, unlike a close or a reset.
    bool peer_fault() const { return kind == Kind::protocol || kind == Kind::truncated; }
    // The text for a log line: empty when clean, "protocol error: ..." and "truncated: ..." for the
    // peer's faults, the detail otherwise.
    std::string text() const {
        switch (kind) {
        case Kind::clean: return {};
        case Kind::protocol: return "protocol error: " + detail;
        case Kind::truncated: return "truncated: " + detail;
        case Kind::io:
        case Kind::aborted: return detail;
        }
        return detail;
    }
};

}  // namespace tn::relay
