// Key generation and public key lines.
#include "ssh/keys.hpp"

#include <fcntl.h>
#include <libssh/libssh.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/error.hpp"
#include "base/strings.hpp"
#include "base/unique_fd.hpp"
#include "ssh/handles.hpp"

namespace tn::ssh {

KeyType parse_key_type(const std::string& s) {
    if (s == "ed25519") return KeyType::ed25519;
    if (s == "ecdsa") return KeyType::ecdsa;
    if (s == "rsa") return KeyType::rsa;
    throw ParseError("unknown key type \"" + s + "\" (use ed25519, ecdsa or rsa)");
}

const char* key_type_name(KeyType t) {
    switch (t) {
    case KeyType::ed25519: return "ed25519";
    case KeyType::ecdsa: return "ecdsa";
    case KeyType::rsa: return "rsa";
    }
    return "?";
}

std::string default_key_file(KeyType t) { return std::string("id_") + key_type_name(t); }

namespace {

void write_file_exclusive(const std::filesystem::path& p, const std::string& data, mode_t mode) {
    UniqueFd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (!fd) throw Error(ExitCode::io, "cannot create " + p.string() + ": " + std::strerror(errno));
    ::fchmod(fd.get(), mode);  // umask must not loosen or tighten what ssh expects
    std::size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw Error(ExitCode::io, "cannot write " + p.string() + ": " + std::strerror(errno));
        }
        off += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0) throw Error(ExitCode::io, "cannot sync " + p.string() + ": " + std::strerror(errno));
}

std::string pubkey_line(ssh_key key, const std::string& comment) {
    char* b64 = nullptr;
    if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK) throw Error(ExitCode::io, "cannot encode public key");
    std::string line = std::string(ssh_key_type_to_char(ssh_key_type(key))) + " " + b64;
    ssh_string_free_char(b64);
    if (!comment.empty()) line += " " + comment;
    return line;
}

}  // namespace

void generate_key(KeyType type, const std::filesystem::path& path, const std::string& comment) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec))
        throw Error(ExitCode::io, path.string() + " already exists; not overwriting a key");
    auto dir = path.parent_path();
    if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
        std::filesystem::create_directories(dir, ec);
        if (ec) throw Error(ExitCode::io, "cannot create " + dir.string() + ": " + ec.message());
        ::chmod(dir.c_str(), 0700);
    }
    enum ssh_keytypes_e t = SSH_KEYTYPE_ED25519;
    int bits = 0;
    if (type == KeyType::ecdsa) {
        t = SSH_KEYTYPE_ECDSA_P256;
        bits = 256;
    } else if (type == KeyType::rsa) {
        t = SSH_KEYTYPE_RSA;
        bits = 3072;
    }
    ssh_key raw = nullptr;
    if (ssh_pki_generate(t, bits, &raw) != SSH_OK) throw Error(ExitCode::io, "key generation failed");
    KeyPtr key(raw);

    // Export to memory and write ourselves: libssh's file export leaves the private key at 0644.
    char* pem = nullptr;
    if (ssh_pki_export_privkey_base64(key.get(), nullptr, nullptr, nullptr, &pem) != SSH_OK)
        throw Error(ExitCode::io, "cannot encode private key");
    std::string priv(pem);
    ssh_string_free_char(pem);
    if (priv.empty() || priv.back() != '\n') priv += '\n';
    write_file_exclusive(path, priv, 0600);
    auto pub = path;
    pub += ".pub";
    std::filesystem::remove(pub, ec);  // a stale .pub of another key would lie
    write_file_exclusive(pub, pubkey_line(key.get(), comment) + "\n", 0644);
}

std::string public_key_line(const std::filesystem::path& private_key) {
    auto pub = private_key;
    pub += ".pub";
    std::ifstream in(pub);
    std::string line;
    if (in && std::getline(in, line) && !trim(line).empty()) return std::string(trim(line));
    ssh_key raw = nullptr;
    if (ssh_pki_import_privkey_file(private_key.c_str(), nullptr, nullptr, nullptr, &raw) != SSH_OK)
        throw Error(ExitCode::io, "cannot read private key " + private_key.string());
    KeyPtr key(raw);
    return pubkey_line(key.get(), "");
}

std::string key_identity(const std::string& line) {
    std::istringstream ss(line);
    std::string type, blob;
    ss >> type >> blob;
    return type + " " + blob;
}

}  // namespace tn::ssh
