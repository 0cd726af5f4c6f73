// tn-exec option parsing helpers: targets, host lists, remote paths, env words.
#include "options.hpp"

#include <fstream>
#include <istream>

#include "base/error.hpp"
#include "base/net_addr.hpp"
#include "base/runtime_dir.hpp"
#include "base/strings.hpp"
#include "ssh/exec.hpp"

namespace tn::exec {

namespace {
// A host list from a file or stdin is data we did not write: bound it.
constexpr std::size_t max_hosts = 10000;

void add_hosts_from(std::istream& in, const std::string& what, std::vector<std::string>& out) {
    std::string line;
    while (std::getline(in, line)) {
        auto t = trim(line);
        if (t.empty() || t[0] == '#') continue;
        if (out.size() >= max_hosts) throw ParseError(what + " lists more than " + std::to_string(max_hosts) + " hosts");
        out.emplace_back(t);
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
    return out;
}

std::vector<std::string> expand_hosts(const std::vector<std::string>& specs, std::istream& stdin_stream) {
    std::vector<std::string> out;
    bool stdin_used = false;
    for (const auto& spec : specs) {
        if (spec == "@-") {
            if (stdin_used) throw ParseError("-H @- given twice");
            stdin_used = true;
            add_hosts_from(stdin_stream, "stdin", out);
        } else if (!spec.empty() && spec[0] == '@') {
            std::ifstream f(spec.substr(1));
            if (!f) throw Error(ExitCode::usage, "cannot read host list " + spec.substr(1));
            add_hosts_from(f, spec.substr(1), out);
        } else {
            for (auto& h : split(spec, ',')) {
                auto t = trim(h);
                if (!t.empty()) out.emplace_back(t);
            }
        }
    }
    for (const auto& h : out) parse_ssh_target(h);  // a bad entry is a usage error before any connection
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
