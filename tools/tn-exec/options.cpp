// tn-exec option parsing helpers: targets, host lists, remote paths, env words.
#include "options.hpp"

#include <filesystem>
#include <fstream>
#include <istream>
#include <map>
#include <sstream>

#include "base/error.hpp"
#include "base/net_addr.hpp"
#include "base/runtime_dir.hpp"
#include "base/strings.hpp"
#include "ssh/exec.hpp"
#include "ssh/jump.hpp"

namespace tn::exec {

namespace {
// A host list from a file or stdin is data we did not write: bound it.
constexpr std::size_t max_hosts = 10000;

void add_hosts_from(std::istream& in, const std::string& what, const std::filesystem::path& dir,
                   std::vector<HostEntry>& out) {
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        auto t = trim(line);
        if (t.empty() || t[0] == '#') continue;
        if (out.size() >= max_hosts) throw ParseError(what + " lists more than " + std::to_string(max_hosts) + " hosts");
        std::istringstream words{std::string(t)};
        HostEntry e;
        std::string opt, extra;
        words >> e.spec;
        auto where = what + ":" + std::to_string(n) + ": ";
        if (words >> opt) {
            if (opt != "--password-file" || !(words >> e.password_file) || (words >> extra))
                throw ParseError(where + "want '[user@]host[:port] [--password-file FILE]', got '" + std::string(t) + "'");
            if (std::filesystem::path(e.password_file).is_relative()) e.password_file = (dir / e.password_file).string();
        }
        try {
            parse_ssh_target(e.spec);
        } catch (const ParseError& err) {
            throw ParseError(where + err.what());
        }
        out.push_back(std::move(e));
    }
}
}  // namespace

Target make_target(const std::string& spec, const SshOptions& o) {
    auto t = parse_ssh_target(spec);
    Target out;
    out.label = spec;
    auto& c = out.client;
    c.host = t.host;
    c.user = !o.user.empty() ? o.user : t.user;
    c.port = o.port ? o.port : t.port;
    c.ssh_dir = home_dir() / ".ssh";
    for (const auto& i : o.identities) c.identities.emplace_back(i);
    if (!o.ssh_config.empty()) c.ssh_config = o.ssh_config;
    if (!o.known_hosts.empty()) c.known_hosts = o.known_hosts;
    c.connect_timeout_s = o.connect_timeout;
    c.accept_new = o.accept_new;
    out.password = o.password;
    // -J, else a ProxyJump in the ssh config for this host (a hop of ours either way).
    std::string jump = !o.jump.empty() ? o.jump : ssh::config_proxy_jump(c).value_or("");
    if (!jump.empty()) {
        // -l and -p are the destination's, as in ssh: the jump host takes its own from -J or ssh config.
        auto j = parse_ssh_target(jump);
        out.jump = c;
        out.jump->host = j.host;
        out.jump->user = j.user;
        out.jump->port = j.port;
        out.jump_label = jump;
    }
    return out;
}

std::vector<HostEntry> expand_hosts(const std::vector<std::string>& specs, std::istream& stdin_stream) {
    std::vector<HostEntry> out;
    bool stdin_used = false;
    for (const auto& spec : specs) {
        if (spec == "@-") {
            if (stdin_used) throw ParseError("-H @- given twice");
            stdin_used = true;
            add_hosts_from(stdin_stream, "stdin", std::filesystem::current_path(), out);
        } else if (!spec.empty() && spec[0] == '@') {
            std::ifstream f(spec.substr(1));
            if (!f) throw Error(ExitCode::usage, "cannot read host list " + spec.substr(1));
            add_hosts_from(f, spec.substr(1), std::filesystem::absolute(spec.substr(1)).parent_path(), out);
        } else {
            for (auto& h : split(spec, ',')) {
                auto t = trim(h);
                if (t.empty()) continue;
                parse_ssh_target(std::string(t));  // a bad entry is a usage error before any connection
                out.push_back({std::string(t), ""});
            }
        }
    }
    return out;
}

std::vector<Target> fan_targets(const std::vector<HostEntry>& hosts, const SshOptions& o) {
    std::map<std::string, std::shared_ptr<PasswordSource>> by_file;  // one read per file, one secret
    std::vector<Target> out;
    for (const auto& h : hosts) {
        auto t = make_target(h.spec, o);
        if (!h.password_file.empty()) {
            auto& src = by_file[h.password_file];
            if (!src) {
                PasswordOptions po;
                po.file = h.password_file;
                src = PasswordSource::make(po);
            }
            t.password = src;
        }
        out.push_back(std::move(t));
    }
    if (out.empty()) throw ParseError("-H names no hosts");
    return out;
}

std::optional<RemotePath> split_remote(const std::string& arg) {
    // A local path with a slash before any colon is local (as in scp): ./a:b, /x/y:z.
    std::size_t start = 0;
    auto at = arg.find('@');
    auto slash = arg.find('/');
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) start = at + 1;
    std::size_t colon;
    if (start < arg.size() && arg[start] == '[') {
        auto close = arg.find(']', start);
        if (close == std::string::npos) return std::nullopt;
        colon = arg.find(':', close);
        if (colon != close + 1) return std::nullopt;
    } else {
        colon = arg.find(':', start);
    }
    if (colon == std::string::npos || colon == 0) return std::nullopt;
    if (slash != std::string::npos && slash < colon) return std::nullopt;
    // [user@]host:PORT:PATH (what our messages print): digits between two colons are the port.
    auto port_end = arg.find(':', colon + 1);
    if (port_end != std::string::npos && port_end > colon + 1 && port_end - colon - 1 <= 5 &&
        parse_int(std::string_view(arg).substr(colon + 1, port_end - colon - 1), 1, 65535))
        colon = port_end;
    RemotePath r{arg.substr(0, colon), arg.substr(colon + 1)};
    if (r.host.empty() || r.host.back() == '@') return std::nullopt;
    return r;
}

std::pair<std::string, std::string> parse_env(const std::string& kv) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw ParseError("--env wants NAME=VALUE, got '" + kv + "'");
    auto name = kv.substr(0, eq);
    if (!ssh::valid_env_name(name)) throw ParseError("--env: '" + name + "' is not a valid variable name");
    return {name, kv.substr(eq + 1)};
}

}  // namespace tn::exec
