// tn-keysetup: key generation, first login, authorized_keys append, and the key-only proof.
#include "keysetup.hpp"

#include <pwd.h>
#include <unistd.h>

#include "authorized_keys.hpp"
#include "base/error.hpp"
#include "common/password.hpp"
#include "ssh/session.hpp"
#include "ssh/sftp.hpp"

namespace tn::keysetup {

namespace {

// authorized_keys beyond this is not a real file; refuse rather than read it all into memory.
constexpr std::size_t max_authorized_keys_bytes = 4u << 20;

std::string local_comment() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    const passwd* pw = ::getpwuid(::getuid());
    return std::string(pw != nullptr ? pw->pw_name : "user") + "@" + host;
}

ssh::Session connect(const Plan& plan, const log::Logger& log) {
    auto s = ssh::Session::connect(plan.client);
    if (s.pinned_new_key())
        log.warn(plan.client.record_new_keys ? "pinned new host key of " : "would pin new host key of ", s.host(),
                 ":", s.port(), " ", s.host_key().type, " ", s.host_key().fingerprint, " in ",
                 plan.client.known_hosts_path().string());
    return s;
}

int check(const Plan& plan, const log::Logger& log) {
    std::error_code ec;
    if (!std::filesystem::exists(plan.key, ec)) {
        log.info("no key at ", plan.key.string());
        return to_int(ExitCode::check_failed);
    }
    auto s = connect(plan, log);
    if (s.authenticate_key_file(plan.key)) {
        log.info("key login works for ", s.endpoint(), " with ", plan.key.string());
        return 0;
    }
    log.info("key login refused by ", s.endpoint(), " for ", plan.key.string());
    return to_int(ExitCode::check_failed);
}

// Logs in with what works, else a password. False (a dry run only) when that would take a password
// we were not handed on stdin: a dry run never prompts.
bool first_login(ssh::Session& s, const Options& opts, const log::Logger& log) {
    if (auto m = s.authenticate({.agent = true, .identities = true, .password = std::nullopt})) {
        log.debug("logged in to ", s.endpoint(), " by ", ssh::auth_method_name(*m));
        return true;
    }
    if (opts.dry_run && !opts.password_stdin) return false;
    std::optional<Secret> pw;
    if (opts.password_stdin)
        pw = cli::read_password_stdin();
    else
        pw = cli::prompt_password_tty(s.user() + "@" + s.host() + "'s password: ");
    if (!pw)
        throw Error(ExitCode::no_perm, "key login refused by " + s.endpoint() +
                                           " and no password available (stdin is not a TTY; use --password-stdin)");
    if (auto m = s.authenticate({.agent = false, .identities = false, .password = std::move(pw)})) {
        log.debug("logged in to ", s.endpoint(), " by ", ssh::auth_method_name(*m));
        return true;
    }
    throw Error(ExitCode::no_perm, "authentication refused by " + s.endpoint());
}

void ensure_mode(ssh::Sftp& sftp, const std::string& path, std::uint32_t mode, bool dry, std::ostream& out,
                 const log::Logger& log) {
    auto st = sftp.stat(path);
    if (!st || st->mode == mode) return;
    if (dry) {
        out << "would chmod " << std::oct << mode << std::dec << " ~/" << path << "\n";
        return;
    }
    sftp.chmod(path, mode);
    log.info("set mode ", std::oct, mode, std::dec, " on ~/", path);
}

}  // namespace

int run(const Options& opts, const log::Logger& log, std::ostream& out) {
    Plan plan = make_plan(opts);
    if (opts.check) return check(plan, log);

    std::error_code ec;
    const bool have_key = std::filesystem::exists(plan.key, ec);
    std::string pub;
    if (!have_key) {
        if (opts.dry_run) {
            out << "would generate " << ssh::key_type_name(plan.key_type) << " key " << plan.key.string() << "\n";
        } else {
            ssh::generate_key(plan.key_type, plan.key, local_comment());
            log.info("generated ", ssh::key_type_name(plan.key_type), " key ", plan.key.string());
        }
    }
    if (have_key || !opts.dry_run) pub = ssh::public_key_line(plan.key);

    auto s = connect(plan, log);
    if (!first_login(s, opts, log)) {
        // What a real run would do next; the remote files cannot be read without logging in.
        out << "would log in to " << s.endpoint() << " with a password (key login refused; a real run asks on "
            << "the TTY or reads --password-stdin)\n"
            << "would create ~/.ssh (0700) and ~/.ssh/authorized_keys (0600) on " << s.endpoint()
            << " if missing, and append " << plan.key.string() << ".pub unless present\n";
        return 0;
    }
    ssh::Sftp sftp(s);

    // sftp starts in the login directory, so relative paths are the remote ~/.
    const std::string dir = ".ssh", file = ".ssh/authorized_keys";
    if (!sftp.stat(dir)) {
        if (opts.dry_run)
            out << "would create ~/.ssh (0700) on " << s.endpoint() << "\n";
        else
            sftp.mkdir(dir, 0700);
    }
    ensure_mode(sftp, dir, 0700, opts.dry_run, out, log);

    auto existing = sftp.read_file(file, max_authorized_keys_bytes);
    if (pub.empty()) {
        out << "would append the new key to ~/" << file << " on " << s.endpoint() << "\n";
        return 0;
    }
    auto ap = plan_authorized_keys(existing.value_or(""), pub);
    if (ap.present) {
        log.info("key already in ~/", file, " on ", s.endpoint());
    } else if (opts.dry_run) {
        out << "would append " << ssh::key_identity(pub).substr(0, 40) << "... to ~/" << file << " on "
            << s.endpoint() << "\n";
    } else {
        sftp.append(file, ap.append, 0600);
        log.info("appended key to ~/", file, " on ", s.endpoint());
    }
    ensure_mode(sftp, file, 0600, opts.dry_run, out, log);
    if (opts.dry_run) return 0;

    // The proof: a fresh session that may use nothing but this key.
    auto proof = connect(plan, log);
    if (!proof.authenticate_key_file(plan.key))
        throw Error(ExitCode::no_perm, "key installed, but " + proof.endpoint() +
                                           " refused a key-only login (check the server's AuthorizedKeysFile, "
                                           "PubkeyAuthentication and the permissions of the remote home)");
    log.info("key login works for ", proof.endpoint(), " with ", plan.key.string());
    return 0;
}

}  // namespace tn::keysetup
