// tn-keysetup option merging and validation.
#include "options.hpp"

#include "base/error.hpp"
#include "base/net_addr.hpp"
#include "base/runtime_dir.hpp"
#include "config/document.hpp"

namespace tn::keysetup {

void merge_config_file(const std::string& file, const GivenOnCli& given, Options& o) {
    auto doc = config::Document::load_file(file);
    auto root = doc.root();
    root.allow_only({"keysetup"});
    if (auto t = root.table("keysetup")) {
        t->allow_only({"host", "user", "port", "identity", "type", "ssh_config", "known_hosts", "connect_timeout",
                       "accept_new"});
        auto host = t->string("host");
        if (host) {
            try {
                parse_ssh_target(*host);
            } catch (const ParseError& e) {
                t->error("host", e.what());
            }
        }
        if (host && !given.target) o.target = *host;
        if (auto v = t->string("user"); v && !given.user) o.user = *v;
        if (auto v = t->integer("port", 1, 65535); v && !given.port) o.port = static_cast<std::uint16_t>(*v);
        if (auto v = t->string("identity"); v && !given.identity) o.identity = *v;
        if (auto v = t->string("type")) {
            try {
                ssh::parse_key_type(*v);
                if (!given.type) o.type = *v;
            } catch (const ParseError& e) {
                t->error("type", e.what());
            }
        }
        if (auto v = t->string("ssh_config"); v && !given.ssh_config) o.ssh_config = *v;
        if (auto v = t->string("known_hosts"); v && !given.known_hosts) o.known_hosts = *v;
        if (auto v = t->integer("connect_timeout", 1, 3600); v && !given.connect_timeout)
            o.connect_timeout = static_cast<int>(*v);
        if (auto v = t->boolean("accept_new"); v && *v) o.accept_new = true;
    }
    doc.finish();
}

Plan make_plan(const Options& o) {
    if (o.target.empty()) throw ParseError("no host given (pass [user@]host or set keysetup.host in the config)");
    auto target = parse_ssh_target(o.target);
    Plan p;
    p.key_type = ssh::parse_key_type(o.type);
    auto& c = p.client;
    c.host = target.host;
    c.user = !o.user.empty() ? o.user : target.user;  // -l wins over user@, as in ssh
    c.port = o.port ? o.port : target.port;
    c.ssh_dir = home_dir() / ".ssh";
    if (!o.ssh_config.empty()) c.ssh_config = o.ssh_config;
    if (!o.known_hosts.empty()) c.known_hosts = o.known_hosts;
    c.connect_timeout_s = o.connect_timeout;
    c.accept_new = o.accept_new;
    c.record_new_keys = !o.dry_run;
    p.key = o.identity.empty() ? c.ssh_dir / ssh::default_key_file(p.key_type) : std::filesystem::path(o.identity);
    c.identities = {p.key};
    return p;
}

}  // namespace tn::keysetup
