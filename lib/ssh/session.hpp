// Session: a connected, host-verified SSH session and its authentication chain (libssh underneath).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "ssh/client_config.hpp"
#include "ssh/handles.hpp"

namespace tn::ssh {

struct HostKeyInfo {
    std::string type;         // "ssh-ed25519"
    std::string fingerprint;  // "SHA256:..."
};

enum class AuthMethod { agent, publickey, password, keyboard_interactive };
const char* auth_method_name(AuthMethod m);

class Session {
public:
    // Connects and applies the host-key policy. Throws tn::Error: 69 when the host cannot be reached,
    // 77 for an unknown key (without accept_new) or a changed one, 78 for an unreadable ssh config.
    // dial: when set, the connection goes over the socket it returns for the host and port the ssh
    // config resolved (HostName, Port) instead of a TCP connect of ours; what it returns beside the
    // socket (a jump host's Hop) lives as long as the session.
    using Dialer = std::function<std::pair<int, std::shared_ptr<void>>(const std::string& host, int port)>;
    static Session connect(const ClientConfig& cfg, const Dialer& dial = {});

    Session(Session&&) noexcept = default;
    Session& operator=(Session&&) noexcept = default;

    const HostKeyInfo& host_key() const { return host_key_; }
    bool pinned_new_key() const { return pinned_; }
    const std::string& user() const { return user_; }
    const std::string& host() const { return host_; }  // after ~/.ssh/config HostName
    int port() const { return port_; }
    std::string endpoint() const;  // user@host:port, for messages

    // Tries the chain in order; returns the method that worked, nullopt if every one was refused.
    std::optional<AuthMethod> authenticate(const AuthOptions& opts);
    // Authenticates with exactly this private key: no agent, no other identity. For proofs and --check.
    bool authenticate_key_file(const std::filesystem::path& private_key);

    ssh_session_struct* raw() const { return s_.get(); }

private:
    explicit Session(SessionPtr s) : s_(std::move(s)) {}
    void verify_host_key(const ClientConfig& cfg);
    [[noreturn]] void fail(const std::string& what) const;

    std::shared_ptr<void> held_;  // before s_: outlives it (the hop its socket goes through)
    SessionPtr s_;
    HostKeyInfo host_key_;
    bool pinned_ = false;
    std::string user_, host_;
    int port_ = 22;
};

}  // namespace tn::ssh
