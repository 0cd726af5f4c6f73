// The TOML config loaders: lib/config's Document and every tool's loader on top of it (tn-route,
// tn-vnet, tn-forward, tn-tun server and client, tn-keysetup), and the importers of foreign configs
// (tn-vnet import: vnet-v2 and frpc; tn-route import: frps and vnet-v2's route; INI and TOML each):
// their input comes from other tools, so any bytes must end in TOML text or a tn::Error (65). A config is written by an admin, but
// configs get generated, templated and copied around: any bytes must end in a loaded config or a
// tn::Error naming FILE:LINE:COL, never a crash, a hang or another exception. The first byte picks
// the loader; the rest is the file, passed as a memfd path like any other file.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.hpp"
#include "config/document.hpp"
#include "tools/tn-forward/settings.hpp"
#include "tools/tn-keysetup/options.hpp"
#include "tools/tn-route/import_frps.hpp"
#include "tools/tn-route/route_config.hpp"
#include "tools/tn-tun/options.hpp"
#include "tools/tn-vnet/import_vnet.hpp"
#include "tools/tn-vnet/vnet_config.hpp"

namespace {

// An in-memory file with a path the loaders can open, closed when done.
class MemFile {
public:
    explicit MemFile(std::string_view text) : fd_(::memfd_create("fuzz.toml", MFD_CLOEXEC)) {
        if (fd_ < 0) __builtin_trap();
        std::size_t at = 0;
        while (at < text.size()) {
            ssize_t n = ::write(fd_, text.data() + at, text.size() - at);
            if (n <= 0) __builtin_trap();
            at += static_cast<std::size_t>(n);
        }
        path_ = "/proc/self/fd/" + std::to_string(fd_);
    }
    ~MemFile() { ::close(fd_); }
    const std::string& path() const { return path_; }

private:
    int fd_;
    std::string path_;
};

void load(std::uint8_t which, std::string_view text) {
    if (which == 0) {
        auto doc = tn::config::Document::parse(text, "fuzz.toml");
        auto root = doc.root();
        root.allow_only({"a", "b"});
        (void)root.string("a"), (void)root.integer("b", 0, 10), (void)root.strings("a"), (void)root.number("b", 0, 1);
        for (const auto& t : root.tables("t")) (void)t.boolean("x"), (void)t.require_string("y");
        for (const auto& d : doc.diagnostics()) (void)d.str();
        doc.finish();
        return;
    }
    switch (which) {  // the importers: the name ending decides INI or TOML, as on the command line
        case 7: (void)tn::vnet::import_vnet_text(text, "fuzz.ini", {}); return;
        case 8: (void)tn::vnet::import_vnet_text(text, "fuzz.toml", {}); return;
        case 9: (void)tn::route::import_route_text(text, "fuzz.ini", {}); return;
        case 10: (void)tn::route::import_route_text(text, "fuzz.toml", {}); return;
        default: break;
    }
    MemFile f(text);
    switch (which) {
        case 1: (void)tn::route::load_route_config(f.path()); break;
        case 2: (void)tn::vnet::load_vnet_config(f.path()); break;
        case 3: (void)tn::forward::load_settings(tn::forward::CliValues{}, f.path()); break;
        case 4: (void)tn::tuntool::load_server(f.path()); break;
        case 5: (void)tn::tuntool::load_client(f.path()); break;
        default: {
            tn::keysetup::Options opts;
            tn::keysetup::merge_config_file(f.path(), {}, opts);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0 || size > 64 * 1024) return 0;
    std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    try {
        load(data[0] % 11, text);
    } catch (const tn::Error&) {
    } catch (const tn::ParseError&) {
    }
    return 0;
}
