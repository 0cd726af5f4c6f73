// tn-keysetup: make a key, install it on a server, pin the host key, prove key login works.
#include <CLI/CLI.hpp>

#include <iostream>

#include "common/cli.hpp"
#include "keysetup.hpp"

int main(int argc, char** argv) {
    tn::cli::CommonOptions common;
    tn::keysetup::Options o;
    CLI::App app("Make an SSH key, install it on a server, pin the host key and prove key-only login.",
                 "tn-keysetup");
    tn::cli::add_common_options(app, common);
    auto* target = app.add_option("target", o.target, "[user@]host[:port] (an ~/.ssh/config alias works)");
    auto* identity = app.add_option("-i,--identity", o.identity, "Private key file (default ~/.ssh/id_TYPE)");
    auto* type = app.add_option("--type", o.type, "Key type to generate")->check(CLI::IsMember({"ed25519", "ecdsa", "rsa"}));
    auto* port = app.add_option("-p,--port", o.port, "SSH port")->check(CLI::Range(1, 65535));
    auto* user = app.add_option("-l,--login", o.user, "Remote user");
    auto* sshcfg = app.add_option("--ssh-config", o.ssh_config, "ssh_config file (default ~/.ssh/config)");
    auto* kh = app.add_option("--known-hosts", o.known_hosts, "known_hosts file (default ~/.ssh/known_hosts)");
    auto* cto = app.add_option("--connect-timeout", o.connect_timeout, "Seconds to wait for the connection")
                    ->check(CLI::Range(1, 3600));
    app.add_flag("--accept-new", o.accept_new, "Pin an unknown host key (its SHA256 fingerprint is printed)");
    app.add_flag("--password-stdin", o.password_stdin, "Read the first-login password from stdin");
    app.add_flag("--check", o.check, "Exit 0 if key login works, 1 if not; change nothing");
    app.add_flag("--dry-run", o.dry_run, "Say what would be done; change nothing");

    return tn::cli::run(app, common, argc, argv, [&](const tn::log::Logger& log) {
        if (!common.config.empty()) {
            tn::keysetup::GivenOnCli given{target->count() > 0, user->count() > 0,    port->count() > 0,
                                           identity->count() > 0, type->count() > 0, sshcfg->count() > 0,
                                           kh->count() > 0,      cto->count() > 0};
            tn::keysetup::merge_config_file(common.config, given, o);
        }
        if (common.check_config) return 0;
        return tn::keysetup::run(o, log, std::cout);
    });
}
