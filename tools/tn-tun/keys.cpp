// `tn-tun keygen` and `tn-tun pubkey`: base64 X25519 keys on stdout, as wg genkey/pubkey do.
#include <istream>
#include <ostream>

#include "base/error.hpp"
#include "base/strings.hpp"
#include "runner.hpp"

namespace tn::tuntool {

int keygen(std::ostream& out) {
    auto kp = tun::generate_keypair();
    out << tun::key_to_base64(kp.priv) << "\n";
    tun::wipe(kp.priv.data(), kp.priv.size());
    return 0;
}

int pubkey(std::istream& in, std::ostream& out) {
    // One line is a key; anything past 1 KiB is not, so we stop reading there.
    std::string line(1024, '\0');
    in.read(line.data(), static_cast<std::streamsize>(line.size()));
    line.resize(static_cast<std::size_t>(in.gcount()));
    try {
        auto priv = tun::key_from_base64(std::string(trim(line)));
        out << tun::key_to_base64(tun::public_key(priv)) << "\n";
        tun::wipe(priv.data(), priv.size());
    } catch (const ParseError& e) {
        throw Error(ExitCode::data, std::string("stdin: ") + e.what());
    }
    return 0;
}

}  // namespace tn::tuntool
