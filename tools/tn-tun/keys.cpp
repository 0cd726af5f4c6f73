// `tn-tun keygen` and `tn-tun pubkey`: base64 X25519 keys on stdout, as wg genkey/pubkey do.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <istream>
#include <ostream>

#include "base/error.hpp"
#include "base/strings.hpp"
#include "base/unique_fd.hpp"
#include "runner.hpp"

namespace tn::tuntool {

void write_key_file(const std::filesystem::path& file, const tun::Key& key) {
    std::string text = tun::key_to_base64(key) + "\n";
    // A new file only, 0600 whatever the umask: never overwrite a key, never widen its mode.
    UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    bool ok = fd && ::fchmod(fd.get(), 0600) == 0 &&
              ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
    int err = errno;
    tun::wipe(text.data(), text.size());
    if (!ok) throw Error(ExitCode::io, "cannot write " + file.string() + ": " + std::strerror(err));
}

int keygen(std::ostream& out, const std::filesystem::path& file, const log::Logger& log, bool psk) {
    tun::Key secret = psk ? tun::generate_psk() : tun::generate_keypair().priv;
    if (!file.empty()) {
        write_key_file(file, secret);
        tun::wipe(secret.data(), secret.size());
        return 0;
    }
    std::string text = tun::key_to_base64(secret) + "\n";
    tun::wipe(secret.data(), secret.size());
    struct stat st {};
    if (::isatty(STDOUT_FILENO)) {
        log.warn("printing a secret key to a terminal; write it to a file instead (tn-tun ", psk ? "genpsk" : "keygen", " -o FILE)");
    } else if (::fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0) {
        // `tn-tun keygen > key`: the shell created the file under the umask; make it ours alone.
        if (::fchmod(STDOUT_FILENO, st.st_mode & 0700) != 0)
            log.warn("writing a private key to a file others can read; set the umask to 077 and try again");
    }
    out << text << std::flush;
    tun::wipe(text.data(), text.size());
    return 0;
}

int pubkey(std::istream& in, std::ostream& out) {
    // One line is a key; anything past 1 KiB is not, so we stop reading there.
    std::string line(1024, '\0');
    in.read(line.data(), static_cast<std::streamsize>(line.size()));
    line.resize(static_cast<std::size_t>(in.gcount()));
    try {
        auto priv = tun::key_from_base64(std::string(trim(line)));
        tun::wipe(line.data(), line.size());
        out << tun::key_to_base64(tun::public_key(priv)) << "\n";
        tun::wipe(priv.data(), priv.size());
    } catch (const ParseError& e) {
        tun::wipe(line.data(), line.size());
        throw Error(ExitCode::data, std::string("stdin: ") + e.what());
    }
    return 0;
}

}  // namespace tn::tuntool
