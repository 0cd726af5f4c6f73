// tn-exec's remote file operations: argument rules and output around ssh::RemoteFs.
#include "fs_cmd.hpp"

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <functional>
#include <iostream>

#include "base/error.hpp"
#include "base/strings.hpp"
#include "output.hpp"
#include "persist_fs.hpp"
#include "runner.hpp"
#include "ssh/sftp.hpp"
#include "ssh/sftp_fs.hpp"

namespace tn::exec {

namespace {

std::string type_name(char t) {
    switch (t) {
    case 'f': return "file";
    case 'd': return "dir";
    case 'l': return "link";
    default: return "other";
    }
}

std::string mode_octal(std::uint32_t m) {
    char b[8];
    std::snprintf(b, sizeof b, "%04o", static_cast<unsigned>(m & 07777));
    return b;
}

std::string mode_text(char type, std::uint32_t m) {
    std::string s(1, type == 'f' ? '-' : type == '?' ? '?' : type);
    const char* rwx = "rwxrwxrwx";
    for (int i = 0; i < 9; ++i) s += (m & (0400u >> i)) ? rwx[i] : '-';
    return s;
}

std::string entry_json(const std::string& host, const ssh::RemoteEntry& e) {
    std::string j = "{\"host\":" + json_quote(host) + ",\"path\":" + json_quote(e.path) + ",\"name\":" + json_quote(e.name) +
                    ",\"type\":\"" + type_name(e.type) + "\",\"mode\":\"" + mode_octal(e.mode) +
                    "\",\"size\":" + std::to_string(e.size) + ",\"uid\":" + std::to_string(e.uid) +
                    ",\"gid\":" + std::to_string(e.gid) + ",\"mtime\":" + std::to_string(e.mtime);
    if (e.link_target) j += ",\"target\":" + json_quote(*e.link_target);
    return j + "}\n";
}

std::string entry_long(const ssh::RemoteEntry& e, const std::string& shown) {
    char when[32] = "?";
    std::time_t t = static_cast<std::time_t>(e.mtime);
    std::tm tm{};
    if (::gmtime_r(&t, &tm) != nullptr) std::strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
    char head[96];
    std::snprintf(head, sizeof head, "%s %6u %6u %12llu %s ", mode_text(e.type, e.mode).c_str(), e.uid, e.gid,
                  static_cast<unsigned long long>(e.size), when);
    std::string line = head + escape_name(shown);
    if (e.link_target) line += " -> " + escape_name(*e.link_target);
    return line + "\n";
}

std::uint32_t parse_mode(const std::string& s) {
    if (s.empty() || s.size() > 4 || s.find_first_not_of("01234567") != std::string::npos)
        throw ParseError("chmod wants an octal mode such as 644 or 0755, got '" + s + "'");
    return static_cast<std::uint32_t>(std::stoul(s, nullptr, 8));
}

struct Parsed {
    std::string host;
    std::vector<std::string> paths;  // remote paths on host, in order
    std::vector<std::string> plain;  // words that are not HOST:PATH (a chmod mode, a link target)
};

// Every HOST:PATH must name the same host; `plain_first` words come before them unparsed.
Parsed parse_args(const std::string& op, const std::vector<std::string>& args, std::size_t plain_first) {
    Parsed p;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (i < plain_first) {
            p.plain.push_back(args[i]);
            continue;
        }
        auto r = split_remote(args[i]);
        if (!r) {
            if (!p.host.empty() && op == "mv") {  // mv HOST:A B: B on the same host
                p.paths.push_back(args[i]);
                continue;
            }
            throw ParseError(op + ": expected [user@]host:PATH, got '" + args[i] + "'");
        }
        if (!p.host.empty() && r->host != p.host) throw ParseError(op + ": all paths must be on one host");
        p.host = r->host;
        p.paths.push_back(r->path);
    }
    if (p.paths.empty()) throw ParseError(op + ": no [user@]host:PATH given");
    return p;
}

void write_out(const std::string& s) {
    if (!write_all(STDOUT_FILENO, s)) throw Error(ExitCode::io, "cannot write standard output");
}

// `write_out` takes every line this host prints (one write per line or JSON record).
void run_op(const std::string& op, const FsOptions& o, bool json, const std::string& label, ssh::RemoteFs& fs,
            const Parsed& p, const std::function<void(const std::string&)>& write_out) {
    auto done = [&](const std::string& path) {
        if (json) write_out("{\"host\":" + json_quote(label) + ",\"op\":\"" + op + "\",\"path\":" + json_quote(path) + ",\"exit\":0}\n");
    };
    if (op == "ls") {
        for (const auto& path : p.paths)
            for (const auto& e : fs.list(path, o.recursive)) {
                std::string shown = o.recursive || e.path == path ? e.path : e.name;
                write_out(json ? entry_json(label, e) : o.long_format ? entry_long(e, shown) : escape_name(shown) + "\n");
            }
    } else if (op == "stat") {
        for (const auto& path : p.paths) {
            auto e = fs.stat(path);
            write_out(json ? entry_json(label, e) : entry_long(e, e.path));
        }
    } else if (op == "mkdir") {
        for (const auto& path : p.paths) fs.mkdir(path, o.parents), done(path);
    } else if (op == "rm") {
        for (const auto& path : p.paths) fs.remove(path, o.recursive), done(path);
    } else if (op == "chmod") {
        auto mode = parse_mode(p.plain.at(0));
        for (const auto& path : p.paths) fs.chmod(path, mode), done(path);
    } else if (op == "mv") {
        fs.rename(p.paths[0], p.paths[1]);
        done(p.paths[1]);
    } else if (op == "ln") {
        fs.symlink(p.plain.at(0), p.paths[0]);
        done(p.paths[0]);
    } else if (op == "df") {
        auto s = fs.df(p.paths[0]);
        std::uint64_t size = s.blocks * s.block_size, avail = s.blocks_avail * s.block_size;
        std::uint64_t used = (s.blocks - s.blocks_free) * s.block_size;
        if (json) {
            write_out("{\"host\":" + json_quote(label) + ",\"path\":" + json_quote(p.paths[0]) + ",\"size\":" +
                      std::to_string(size) + ",\"used\":" + std::to_string(used) + ",\"avail\":" + std::to_string(avail) +
                      ",\"inodes\":" + std::to_string(s.files) + ",\"inodes_free\":" + std::to_string(s.files_free) + "}\n");
        } else {
            char line[160];
            std::snprintf(line, sizeof line, "%15s %15s %15s\n%15llu %15llu %15llu\n", "size", "used", "avail",
                          static_cast<unsigned long long>(size), static_cast<unsigned long long>(used),
                          static_cast<unsigned long long>(avail));
            write_out(line);
        }
    }
}

}  // namespace

void run_fs_op(const std::string& op, const FsOptions& o, bool json, const std::string& label, ssh::RemoteFs& fs,
               const std::vector<std::string>& plain, const std::vector<std::string>& paths,
               const std::function<void(const std::string&)>& write) {
    Parsed p{"", paths, plain};
    run_op(op, o, json, label, fs, p, write);
}

std::string escape_name(const std::string& name) {
    std::string out;
    for (char c : name) {
        if (c == '\\') out += "\\\\";
        else out += c;
    }
    return escape_controls(out);
}

CLI::App* FsCommands::chosen() const {
    for (auto* s : subs)
        if (*s) return s;
    return nullptr;
}

FsCommands add_fs_commands(CLI::App& app, FsOptions& o, SshOptions& ssh, const std::function<void(CLI::App*)>& add_ssh) {
    FsCommands c;
    auto add = [&](const char* name, const char* help, const char* args_help) {
        auto* sub = app.add_subcommand(name, help);
        add_ssh(sub);
        sub->add_option("args", o.args, args_help)->required();
        c.subs.push_back(sub);
        return sub;
    };
    auto* ls = add("ls", "List a remote directory: [user@]host:PATH", "[user@]host:PATH...");
    // ls -l and mkdir -p mean what they mean in ls(1) and mkdir(1): login and port keep their long names.
    ls->remove_option(ls->get_option("--login"));
    ls->add_option("--login", ssh.user, "Remote user");
    ls->add_flag("-l,--long", o.long_format, "Mode, owner, size and time too");
    ls->add_flag("-r,--recursive", o.recursive, "Every level below too (symlinks not followed)");
    add("stat", "Show a remote path (a symlink as itself)", "[user@]host:PATH...");
    auto* mk = add("mkdir", "Create remote directories", "[user@]host:PATH...");
    mk->remove_option(mk->get_option("--port"));
    mk->add_option("--port", ssh.port, "SSH port")->check(CLI::Range(1, 65535));
    mk->add_flag("-p,--parents", o.parents, "Create missing parents; an existing directory is fine");
    add("rm", "Remove remote files (and trees with -r)", "[user@]host:PATH...")
        ->add_flag("-r,--recursive", o.recursive, "Remove directories and everything below");
    add("mv", "Rename a remote path: [user@]host:FROM [host:]TO", "[user@]host:FROM then [[user@]host:]TO");
    add("chmod", "Set remote permission bits: MODE [user@]host:PATH...", "MODE (octal) then [user@]host:PATH...");
    add("ln", "Create a remote symlink: ln -s TARGET [user@]host:LINK", "TARGET then [user@]host:LINK")
        ->add_flag("-s,--symbolic", o.symbolic, "Symbolic link (the only kind SFTP makes)");
    add("df", "Remote file system space (statvfs@openssh.com)", "[user@]host[:PATH]");
    return c;
}

namespace {

// -H: the same operation on every host, bare PATHs; lines prefixed "host: " (JSON records carry the host).
int fs_fan_out(const std::string& op, const SshOptions& ssh, const FanOut& fan, const FsOptions& o,
               const log::Logger& log, const Parsed& p) {
    auto targets = fan_targets(expand_hosts(fan.host_specs, std::cin), ssh);
    Output out(fan.json ? OutputMode::json : OutputMode::prefixed);
    return for_each_host(targets, fan.parallel, out, log, [&](const Target& t, HostOutput& ho) {
        try {
            auto session = open_session(t);
            ssh::Sftp sftp(session);
            ssh::RemoteFs fs(session, sftp);
            run_op(op, o, fan.json, t.label, fs, p, [&](const std::string& s) {
                if (fan.json) write_out(s);  // already one JSON record with the host
                else ho.out(s);
            });
            return 0;
        } catch (const ssh::FsError& e) {
            log.error(t.label, ": ", e.what());  // 1, 77 or 74 for this host, as with one host
            return to_int(e.code());
        }
    });
}

}  // namespace

int fs_main(const std::string& op, const SshOptions& ssh, const FanOut& fan, const FsOptions& o, const log::Logger& log) {
    if (fan.persist > 0 && !fan.host_specs.empty()) throw ParseError(op + " takes --persist with one host, not -H");
    std::size_t plain = (op == "chmod" || op == "ln") ? 1 : 0;
    if (op == "ln" && !o.symbolic) throw ParseError("ln: only symbolic links can be made over SFTP: use ln -s");
    auto args = o.args;
    Parsed p;
    if (!fan.host_specs.empty()) {
        for (std::size_t i = 0; i < args.size(); ++i) {
            if (split_remote(args[i]) && i >= plain)
                throw ParseError(op + " -H takes bare PATHs (the hosts come from -H), got '" + args[i] + "'");
            (i < plain ? p.plain : p.paths).push_back(args[i]);
        }
        if (p.paths.empty()) throw ParseError(op + ": no PATH given");
    } else {
        if (op == "df" && args.size() == 1 && !split_remote(args[0])) args[0] += ":";
        p = parse_args(op, args, plain);
    }
    if (p.plain.size() != plain) throw ParseError(op + ": missing arguments");
    if (op == "mv" && p.paths.size() != 2) throw ParseError("mv takes FROM and TO");
    if ((op == "ln" || op == "df") && p.paths.size() != 1) throw ParseError(op + " takes one [user@]host:PATH");
    if (!fan.host_specs.empty()) return fs_fan_out(op, ssh, fan, o, log, p);
    auto target = make_target(p.host, ssh);
    try {
        if (fan.persist > 0) {
            persist_fs(target, ssh, fan.persist, op, o, fan.json, p.plain, p.paths);
            return 0;
        }
        auto session = open_session(target);
        ssh::Sftp sftp(session);
        ssh::RemoteFs fs(session, sftp);
        run_op(op, o, fan.json, target.label, fs, p, write_out);
        return 0;
    } catch (const ssh::FsError& e) {
        log.error(e.what());
        return to_int(e.code());
    } catch (const PasswordError& e) {
        log.error(e.what());
        return to_int(e.code());
    } catch (const Error& e) {
        log.error(e.what());  // SPEC: tn-exec's own failures are 255, as with ssh
        return 255;
    }
}

}  // namespace tn::exec
