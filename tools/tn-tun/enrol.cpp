// Enrolment: add-peer / remove-peer edit the server's config file and ask a running server to reload.
#include "enrol.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ostream>
#include <regex>
#include <vector>

#include "base/error.hpp"
#include "base/net_addr.hpp"
#include "base/runtime_dir.hpp"
#include "base/strings.hpp"
#include "base/unique_fd.hpp"
#include "config/document.hpp"
#include "control.hpp"
#include "options.hpp"
#include "runner.hpp"
#include "state_file.hpp"

namespace tn::tuntool {

namespace {

// A name also becomes file names (NAME.key, NAME.psk): letters, digits, dot, dash, underscore.
void check_name(const std::string& name) {
    static const std::regex ok("[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}");
    if (!std::regex_match(name, ok))
        throw Error(ExitCode::config, "peer name '" + name + "': use 1 to 64 letters, digits, '.', '-' or '_'");
}

std::string without_eol(std::string line) {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    return line;
}

// A table header line ([x] or [[x]]), as opposed to an array value that starts a line.
bool is_header(const std::string& line) {
    static const std::regex header(R"(\s*\[\[?\s*[A-Za-z0-9_.-]+\s*\]\]?\s*(#.*)?)");
    return std::regex_match(without_eol(line), header);
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t nl = text.find('\n', at);
        std::size_t end = nl == std::string::npos ? text.size() : nl + 1;
        out.push_back(text.substr(at, end - at));
        at = end;
    }
    return out;
}

// The name in a lone `[[peer]]` table's text, or nullopt when it has none.
std::optional<std::string> peer_name(const std::string& chunk) {
    try {
        auto doc = config::Document::parse(chunk, "peer");
        auto peers = doc.root().tables("peer");
        if (peers.size() == 1) return peers[0].string("name");
    } catch (const std::exception&) {
    }
    return std::nullopt;
}

// Replaces `path` with `text` only if the result loads as a server config: written to a temporary file
// beside it (same directory, so relative key paths resolve alike, and the rename is atomic), with the
// old file's mode and owner.
void replace_config(const std::filesystem::path& path, const std::string& text) {
    auto real = std::filesystem::weakly_canonical(path);  // a symlinked config keeps its link
    struct stat st {};
    if (::stat(real.c_str(), &st) != 0) throw Error(ExitCode::config, "cannot read " + path.string() + ": " + std::strerror(errno));
    std::string tmpl = (real.parent_path() / ("." + real.filename().string() + ".XXXXXX")).string();
    UniqueFd fd(::mkstemp(tmpl.data()));
    if (!fd) throw Error(ExitCode::io, "cannot write beside " + real.string() + ": " + std::strerror(errno));
    std::filesystem::path tmp(tmpl);
    bool ok = ::fchmod(fd.get(), st.st_mode & 07777) == 0 && (::fchown(fd.get(), st.st_uid, st.st_gid) == 0 || errno == EPERM) &&
              ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd.get()) == 0;
    int err = errno;
    try {
        if (!ok) throw Error(ExitCode::io, "cannot write " + tmp.string() + ": " + std::strerror(err));
        load_server(tmp);  // throws with every problem listed; the old file stays as it was
        if (::rename(tmp.c_str(), real.c_str()) != 0)
            throw Error(ExitCode::io, "cannot replace " + real.string() + ": " + std::strerror(errno));
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
}

// Asks the server on `tun` to reload; a server that is not running reads the file at its next start.
void ask_reload(const std::string& tun, const log::Logger& log) {
    std::string reply;
    try {
        reply = control_request(control_socket_path(tun), "reload");
    } catch (const Error& e) {
        if (e.code() == ExitCode::unavailable) {
            log.info("no tn-tun server runs on ", tun, ": the change takes effect at its next start");
            return;
        }
        throw Error(e.code(), std::string("the running server says: ") + e.what());  // a refused reload: 78
    }
    if (!reply.empty() && reply.back() == '\n') reply.pop_back();
    log.info("server on ", tun, ": ", reply);
}

// One edit at a time per server: two add-peer runs must not both read the old file and each write
// it back with only their own peer.
FileLock edit_lock(const std::string& tun) {
    auto lock = FileLock::try_acquire(ensure_state_dir() / ("tn-tun-" + tun + ".enrol.lock"));
    if (!lock) throw Error(ExitCode::temp_fail, "another add-peer or remove-peer is editing the config of " + tun);
    return std::move(*lock);
}

std::string endpoint_for(const AddPeer& a, const ServerOptions& o) {
    std::string e = a.endpoint.empty() ? o.listen : a.endpoint;
    HostPort hp;
    try {
        hp = parse_host_port(e);
    } catch (const ParseError& err) {
        throw Error(ExitCode::config, "--endpoint " + e + ": " + err.what());
    }
    if (hp.host.empty() || hp.host == "0.0.0.0" || hp.host == "::")
        throw Error(ExitCode::config, "the server listens on " + o.listen +
                                          ": name the address clients reach it at with --endpoint HOST:PORT");
    return hp.str();
}

}  // namespace

std::string append_peer(std::string config, const std::string& name, const std::string& public_key,
                        const std::optional<std::string>& psk_file) {
    if (!config.empty() && config.back() != '\n') config += '\n';
    config += "\n[[peer]]\nname = \"" + name + "\"\npublic_key = \"" + public_key + "\"\n";
    if (psk_file) config += "preshared_key_file = \"" + *psk_file + "\"\n";
    return config;
}

std::string remove_peer_text(const std::string& config, const std::string& name) {
    static const std::regex peer_header(R"(\s*\[\[\s*peer\s*\]\]\s*(#.*)?)");
    auto lines = lines_of(config);
    std::string out;
    int removed = 0;
    bool last_dropped = false;
    for (std::size_t i = 0; i < lines.size();) {
        std::size_t j = i + 1;
        while (j < lines.size() && !is_header(lines[j])) ++j;
        std::string chunk;
        for (std::size_t k = i; k < j; ++k) chunk += lines[k];
        bool drop = std::regex_match(without_eol(lines[i]), peer_header) && peer_name(chunk) == name;
        if (drop) ++removed;
        else out += chunk;
        last_dropped = drop;
        i = j;
    }
    if (removed == 0) throw Error(ExitCode::config, "no [[peer]] named '" + name + "' in the config");
    // The blank line that separated a removed last table goes too: add-peer then remove-peer gives
    // back the file as it was.
    while (last_dropped && out.size() >= 2 && out.ends_with("\n\n")) out.pop_back();
    return out;
}

int add_peer(const AddPeer& a, std::ostream& out, const log::Logger& log) {
    check_name(a.name);
    auto lock = edit_lock(load_server(a.config).tun);
    auto o = load_server(a.config);  // again, now that nobody else edits it
    for (auto& p : o.core.peers)
        if (p.name == a.name) throw Error(ExitCode::config, "a [[peer]] named '" + a.name + "' is already in " + a.config.string());
    std::string endpoint = endpoint_for(a, o);
    auto conf_dir = std::filesystem::absolute(a.config).parent_path();
    auto out_dir = std::filesystem::absolute(a.out_dir.empty() ? "." : a.out_dir);
    auto kp = tun::generate_keypair();
    std::vector<std::filesystem::path> made;  // removed again if anything fails
    try {
        write_key_file(out_dir / (a.name + ".key"), kp.priv);
        made.push_back(out_dir / (a.name + ".key"));
        std::optional<std::string> psk_name;
        if (a.psk) {
            tun::Key psk = tun::generate_psk();
            psk_name = a.name + ".psk";
            for (const auto& dir : {conf_dir, out_dir}) {
                if (std::find(made.begin(), made.end(), dir / *psk_name) != made.end()) continue;  // one directory
                write_key_file(dir / *psk_name, psk);
                made.push_back(dir / *psk_name);
            }
            tun::wipe(psk.data(), psk.size());
        }
        auto text = read_small_file(std::filesystem::weakly_canonical(a.config));
        if (!text) throw Error(ExitCode::config, "cannot read " + a.config.string());
        replace_config(a.config, append_peer(*text, a.name, tun::key_to_base64(kp.pub), psk_name));
    } catch (...) {
        for (auto& f : made) std::filesystem::remove(f);
        throw;
    }
    log.info("peer ", a.name, " added to ", a.config.string(), "; its key is in ", (out_dir / (a.name + ".key")).string());
    ask_reload(o.tun, log);
    // JSON strings are TOML basic strings: any directory name comes out quoted right.
    out << "[client]\nserver = " << json_quote(endpoint) << "\nprivate_key_file = " << json_quote((out_dir / (a.name + ".key")).string())
        << "\nserver_public_key = \"" << tun::key_to_base64(o.core.key.pub) << "\"\n";
    if (a.psk) out << "preshared_key_file = " << json_quote((out_dir / (a.name + ".psk")).string()) << "\n";
    out << "tun = \"tn0\"\npersistent_keepalive = 25\n" << std::flush;
    return 0;
}

int remove_peer(const std::filesystem::path& config, const std::string& name, const log::Logger& log) {
    auto lock = edit_lock(load_server(config).tun);
    auto o = load_server(config);
    auto text = read_small_file(std::filesystem::weakly_canonical(config));
    if (!text) throw Error(ExitCode::config, "cannot read " + config.string());
    replace_config(config, remove_peer_text(*text, name));
    log.info("peer ", name, " removed from ", config.string());
    ask_reload(o.tun, log);
    return 0;
}

}  // namespace tn::tuntool
