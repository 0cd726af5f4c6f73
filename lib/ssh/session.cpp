// Session: connect, host-key verification against known_hosts, and the auth chain.
#include "ssh/session.hpp"

#include <libssh/libssh.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "base/error.hpp"
#include "ssh/host_key.hpp"

namespace tn::ssh {

namespace {

KnownHostState to_state(ssh_known_hosts_e e) {
    switch (e) {
    case SSH_KNOWN_HOSTS_OK: return KnownHostState::ok;
    case SSH_KNOWN_HOSTS_CHANGED: return KnownHostState::changed;
    case SSH_KNOWN_HOSTS_OTHER: return KnownHostState::other_type;
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND: return KnownHostState::unknown;
    case SSH_KNOWN_HOSTS_ERROR: return KnownHostState::error;
    }
    return KnownHostState::error;
}

void set_opt(ssh_session s, ssh_options_e opt, const void* value, const char* what) {
    if (ssh_options_set(s, opt, value) < 0)
        throw Error(ExitCode::config, std::string("invalid ssh option ") + what + ": " + ssh_get_error(s));
}

std::string get_string_opt(ssh_session s, ssh_options_e opt) {
    char* v = nullptr;
    if (ssh_options_get(s, opt, &v) != SSH_OK || v == nullptr) return {};
    std::string out(v);
    ssh_string_free_char(v);
    return out;
}

}  // namespace

const char* auth_method_name(AuthMethod m) {
    switch (m) {
    case AuthMethod::agent: return "agent";
    case AuthMethod::publickey: return "publickey";
    case AuthMethod::password: return "password";
    case AuthMethod::keyboard_interactive: return "keyboard-interactive";
    }
    return "?";
}

// In the [user@]host[:port] form every tool accepts back: an IPv6 address goes in brackets.
std::string Session::endpoint() const {
    bool v6 = host_.find(':') != std::string::npos;
    return (user_.empty() ? "" : user_ + "@") + (v6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_);
}

void Session::fail(const std::string& what) const {
    throw Error(ExitCode::unavailable, what + " " + endpoint() + ": " + ssh_get_error(s_.get()));
}

Session Session::connect(const ClientConfig& cfg, const Dialer& dial) {
    SessionPtr sp(ssh_new());
    if (!sp) throw Error(ExitCode::io, "cannot allocate an ssh session");
    ssh_session s = sp.get();

    // %d must be the client's own ~/.ssh (from $HOME), not the passwd entry's: libssh would otherwise
    // read and write the real user's files even when HOME points elsewhere.
    set_opt(s, SSH_OPTIONS_SSH_DIR, cfg.ssh_dir.c_str(), "ssh dir");
    set_opt(s, SSH_OPTIONS_HOST, cfg.host.c_str(), "host");
    bool no = false;
    set_opt(s, SSH_OPTIONS_PROCESS_CONFIG, &no, "process config");
    auto conf = cfg.ssh_config_path();
    std::error_code ec;
    if (cfg.ssh_config && !std::filesystem::exists(conf, ec))
        throw Error(ExitCode::config, "ssh config " + conf.string() + " does not exist");
    if (std::filesystem::exists(conf, ec) && ssh_options_parse_config(s, conf.c_str()) < 0)
        throw Error(ExitCode::config, "cannot parse ssh config " + conf.string() + ": " + ssh_get_error(s));

    // Command-line values win over ~/.ssh/config, as with ssh(1).
    if (!cfg.user.empty()) set_opt(s, SSH_OPTIONS_USER, cfg.user.c_str(), "user");
    if (cfg.port) {
        unsigned int p = *cfg.port;
        set_opt(s, SSH_OPTIONS_PORT, &p, "port");
    }
    // Explicit identities go first in libssh's list, ahead of config and default ones.
    for (auto it = cfg.identities.rbegin(); it != cfg.identities.rend(); ++it)
        set_opt(s, SSH_OPTIONS_IDENTITY, it->c_str(), "identity");
    auto kh = cfg.known_hosts_path();
    set_opt(s, SSH_OPTIONS_KNOWNHOSTS, kh.c_str(), "known_hosts");
    long timeout = cfg.connect_timeout_s;
    set_opt(s, SSH_OPTIONS_TIMEOUT, &timeout, "timeout");
    // Without TCP_NODELAY small SFTP and channel writes stall on Nagle + delayed ACK.
    int one = 1;
    set_opt(s, SSH_OPTIONS_NODELAY, &one, "nodelay");

    Session session(std::move(sp));
    session.host_ = get_string_opt(s, SSH_OPTIONS_HOST);
    session.user_ = get_string_opt(s, SSH_OPTIONS_USER);
    unsigned int port = 22;
    ssh_options_get_port(s, &port);
    session.port_ = static_cast<int>(port);

    if (dial) {
        auto [fd, held] = dial(session.host_, session.port_);
        session.held_ = std::move(held);
        // libssh takes the socket over (and closes it with the session); with it, no ProxyCommand
        // from the ssh config runs.
        ssh_options_set(s, SSH_OPTIONS_FD, &fd);
    }
    if (ssh_connect(s) != SSH_OK) session.fail("cannot connect to");
    session.verify_host_key(cfg);
    return session;
}

void Session::verify_host_key(const ClientConfig& cfg) {
    ssh_key raw_key = nullptr;
    if (ssh_get_server_publickey(s_.get(), &raw_key) != SSH_OK) fail("no host key from");
    KeyPtr key(raw_key);
    unsigned char* hash = nullptr;
    size_t hlen = 0;
    if (ssh_get_publickey_hash(key.get(), SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) != 0) fail("cannot hash host key of");
    char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
    ssh_clean_pubkey_hash(&hash);
    host_key_.fingerprint = fp != nullptr ? fp : "";
    ssh_string_free_char(fp);
    host_key_.type = ssh_key_type_to_char(ssh_key_type(key.get()));

    auto kh = cfg.known_hosts_path();
    std::string where = host_ + (port_ != 22 ? ":" + std::to_string(port_) : "");
    switch (decide_host_key(to_state(ssh_session_is_known_server(s_.get())), cfg.accept_new)) {
    case HostKeyAction::proceed: return;
    case HostKeyAction::pin: {
        pinned_ = true;
        if (!cfg.record_new_keys) return;
        std::error_code ec;
        std::filesystem::create_directories(kh.parent_path(), ec);
        if (ssh_session_update_known_hosts(s_.get()) != SSH_OK)
            throw Error(ExitCode::io, "cannot write " + kh.string() + ": " + ssh_get_error(s_.get()));
        return;
    }
    case HostKeyAction::refuse_unknown:
        throw Error(ExitCode::no_perm, "host key of " + where + " is not known (" + host_key_.type + " " +
                                           host_key_.fingerprint + "); check it and rerun with --accept-new to pin it in " +
                                           kh.string());
    case HostKeyAction::refuse_changed:
        throw Error(ExitCode::no_perm, "HOST KEY CHANGED for " + where + ": now " + host_key_.type + " " +
                                           host_key_.fingerprint + ", which does not match " + kh.string() +
                                           "; this may be an attack. Remove the old entry only if you know why it changed");
    case HostKeyAction::fail:
        throw Error(ExitCode::io, "cannot check host key of " + where + " against " + kh.string() + ": " +
                                      ssh_get_error(s_.get()));
    }
}

namespace {

// The identity libssh would offer first (-i, then IdentityFile, then the defaults; expanded once
// connected), when it is readable without a passphrase.
KeyPtr first_identity(ssh_session s) {
    char* path = nullptr;
    if (ssh_options_get(s, SSH_OPTIONS_IDENTITY, &path) != SSH_OK || path == nullptr) return {};
    std::string p(path);
    ssh_string_free_char(path);
    ssh_key raw = nullptr;
    if (ssh_pki_import_privkey_file(p.c_str(), nullptr, nullptr, nullptr, &raw) != SSH_OK) return {};
    return KeyPtr(raw);
}

// Keyboard-interactive (PAM-backed servers ask for the password this way): the password answers the
// hidden prompts of the first round that has any. A server that asks again has refused it: stop
// there rather than answer the same password in a loop.
bool kbdint_password(ssh_session s, const char* pw) {
    int rc = ssh_userauth_kbdint(s, nullptr, nullptr);
    bool answered = false;
    for (int rounds = 0; rc == SSH_AUTH_INFO && rounds < 8; ++rounds) {
        int n = ssh_userauth_kbdint_getnprompts(s);
        bool hidden = false;
        for (int i = 0; i < n; ++i) {
            char echo = 0;
            ssh_userauth_kbdint_getprompt(s, static_cast<unsigned>(i), &echo);
            hidden |= echo == 0;
        }
        if (hidden && answered) return false;
        for (int i = 0; i < n; ++i) {
            char echo = 0;
            ssh_userauth_kbdint_getprompt(s, static_cast<unsigned>(i), &echo);
            ssh_userauth_kbdint_setanswer(s, static_cast<unsigned>(i), echo ? "" : pw);
        }
        answered |= hidden;
        rc = ssh_userauth_kbdint(s, nullptr, nullptr);
    }
    return rc == SSH_AUTH_SUCCESS;
}

}  // namespace

std::optional<AuthMethod> Session::authenticate(const AuthOptions& opts) {
    ssh_session s = s_.get();
    // Without an agent the chain would start with this key anyway: sign with it at once, as paramiko
    // does, instead of asking "none" for the methods and then whether the key would do (two round
    // trips saved per connection). If it is refused, the full chain below runs as before. Not when a
    // password is at hand: that login expects the keys to fail, and each failure counts against the
    // server's MaxAuthTries before the password gets its turn.
    const char* agent = std::getenv("SSH_AUTH_SOCK");
    if (opts.identities && !opts.password && (agent == nullptr || *agent == '\0')) {
        if (KeyPtr key = first_identity(s)) {
            int rc = ssh_userauth_publickey(s, nullptr, key.get());
            if (rc == SSH_AUTH_SUCCESS) return AuthMethod::publickey;
            if (rc == SSH_AUTH_ERROR && !ssh_is_connected(s)) fail("connection lost during publickey auth on");
        }
    }
    int rc = ssh_userauth_none(s, nullptr);
    if (rc == SSH_AUTH_ERROR) fail("authentication failed on");
    if (rc == SSH_AUTH_SUCCESS) return AuthMethod::publickey;  // server asked for nothing
    int methods = ssh_userauth_list(s, nullptr);

    if ((methods & SSH_AUTH_METHOD_PUBLICKEY) && (opts.agent || opts.identities)) {
        // libssh's auto method walks the agent (when SSH_AUTH_SOCK is set), then -i identities, then
        // IdentityFile lines and the default keys in ssh_dir: OpenSSH's order. Encrypted keys are
        // skipped because no passphrase callback is set, so it never prompts.
        rc = ssh_userauth_publickey_auto(s, nullptr, nullptr);
        if (rc == SSH_AUTH_SUCCESS) return AuthMethod::publickey;
        if (!ssh_is_connected(s)) fail("connection lost during publickey auth on");
    }
    if (opts.password) {
        // One try with the one password: when "password" is offered it is the only method used, so a
        // wrong password costs one attempt, never a second one through keyboard-interactive.
        const char* pw = opts.password->expose().c_str();
        if (methods & SSH_AUTH_METHOD_PASSWORD) {
            rc = ssh_userauth_password(s, nullptr, pw);
            if (rc == SSH_AUTH_SUCCESS) return AuthMethod::password;
        } else if (methods & SSH_AUTH_METHOD_INTERACTIVE) {
            if (kbdint_password(s, pw)) return AuthMethod::keyboard_interactive;
        }
    }
    if (!ssh_is_connected(s)) fail("connection lost during authentication on");
    return std::nullopt;
}

bool Session::authenticate_key_file(const std::filesystem::path& private_key) {
    ssh_key raw = nullptr;
    if (ssh_pki_import_privkey_file(private_key.c_str(), nullptr, nullptr, nullptr, &raw) != SSH_OK)
        throw Error(ExitCode::io, "cannot read private key " + private_key.string());
    KeyPtr key(raw);
    int rc = ssh_userauth_none(s_.get(), nullptr);
    if (rc == SSH_AUTH_SUCCESS) return true;
    rc = ssh_userauth_publickey(s_.get(), nullptr, key.get());
    if (rc == SSH_AUTH_ERROR && !ssh_is_connected(s_.get())) fail("connection lost during publickey auth on");
    return rc == SSH_AUTH_SUCCESS;
}

}  // namespace tn::ssh
