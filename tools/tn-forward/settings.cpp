// tn-forward settings: [server], [liveness] and [[forward]] tables, merged under the command line.
#include "settings.hpp"

#include "base/error.hpp"
#include "base/runtime_dir.hpp"
#include "config/document.hpp"

namespace tn::forward {

std::string Rule::listen_host() const {
    // Like ssh: loopback unless a bind address is given. For -R the server resolves the name, and ""
    // asks it for every address (honoured only with GatewayPorts clientspecified).
    if (spec.bind.empty()) return kind == Kind::remote ? "localhost" : "127.0.0.1";
    if (spec.bind == "*") return kind == Kind::remote ? "" : "0.0.0.0";
    return spec.bind;
}

std::string Rule::str() const {
    auto br = [](const std::string& h) { return h.find(':') != std::string::npos ? "[" + h + "]" : h; };
    std::string flag = kind == Kind::local ? "-L " : kind == Kind::remote ? "-R " : "-D ";
    std::string s = flag + (spec.bind.empty() ? "" : br(spec.bind) + ":") + std::to_string(spec.port);
    if (kind != Kind::dynamic) s += ":" + br(spec.host) + ":" + std::to_string(spec.host_port);
    return s;
}

Rule parse_rule(Kind kind, const std::string& text) {
    Rule r;
    r.kind = kind;
    if (kind == Kind::dynamic) {
        auto d = parse_dynamic_spec(text);
        r.spec.bind = d.bind;
        r.spec.port = d.port;
    } else {
        r.spec = parse_forward_spec(text);
        if (kind == Kind::local && r.spec.port == 0) throw ParseError("-L needs a listen port other than 0 in \"" + text + "\"");
    }
    return r;
}

namespace {

void load_file(const std::string& file, CliValues& v, std::vector<Rule>& rules) {
    auto doc = config::Document::load_file(file);
    auto root = doc.root();
    root.allow_only({"server", "liveness", "forward"});
    if (auto s = root.table("server")) {
        s->allow_only({"host", "user", "port", "identity", "known_hosts", "ssh_config", "accept_new", "connect_timeout"});
        if (auto h = s->string("host"); h && v.target.empty()) v.target = *h;
        if (auto u = s->string("user"); u && v.user.empty()) v.user = *u;
        if (auto p = s->integer("port", 1, 65535); p && !v.port) v.port = static_cast<std::uint16_t>(*p);
        if (auto i = s->string("identity"); i && v.identity.empty()) v.identity = *i;
        if (auto k = s->string("known_hosts"); k && v.known_hosts.empty()) v.known_hosts = *k;
        if (auto c = s->string("ssh_config"); c && v.ssh_config.empty()) v.ssh_config = *c;
        if (auto a = s->boolean("accept_new"); a && *a) v.accept_new = true;
        if (auto t = s->integer("connect_timeout", 1, 600); t && !v.connect_timeout) v.connect_timeout = static_cast<int>(*t);
    }
    if (auto l = root.table("liveness")) {
        l->allow_only({"keepalive", "keepalive_count", "probe", "backoff_max"});
        if (auto k = l->integer("keepalive", 1, 3600); k && !v.keepalive) v.keepalive = static_cast<int>(*k);
        if (auto k = l->integer("keepalive_count", 1, 100); k && !v.keepalive_count) v.keepalive_count = static_cast<int>(*k);
        if (auto b = l->integer("backoff_max", 1, 3600); b && !v.backoff_max) v.backoff_max = static_cast<int>(*b);
        if (auto p = l->string("probe"); p && v.probe.empty()) {
            try {
                parse_host_port(*p);
                v.probe = *p;
            } catch (const ParseError& e) {
                l->error("probe", e.what());
            }
        }
    }
    for (auto& f : root.tables("forward")) {
        f.allow_only({"local", "remote", "dynamic"});
        int n = 0;
        for (auto [key, kind] : {std::pair{"local", Kind::local}, {"remote", Kind::remote}, {"dynamic", Kind::dynamic}}) {
            auto text = f.string(key);
            if (!text) continue;
            ++n;
            try {
                rules.push_back(parse_rule(kind, *text));
            } catch (const ParseError& e) {
                f.error(key, e.what());
            }
        }
        if (n != 1) f.error("local", "each [[forward]] needs exactly one of local, remote, dynamic");
    }
    doc.finish();
}

}  // namespace

Settings load_settings(const CliValues& cli, const std::string& config_file) {
    CliValues v = cli;
    std::vector<Rule> file_rules;
    if (!config_file.empty()) load_file(config_file, v, file_rules);

    Settings s;
    s.config_file = config_file;
    if (v.target.empty()) throw ParseError("no host given (pass [user@]host or set server.host in the config)");
    auto t = parse_ssh_target(v.target);
    auto& c = s.client;
    c.host = t.host;
    c.user = !v.user.empty() ? v.user : t.user;
    c.port = v.port ? v.port : t.port;
    c.ssh_dir = home_dir() / ".ssh";
    if (!v.identity.empty()) c.identities = {v.identity};
    if (!v.ssh_config.empty()) c.ssh_config = v.ssh_config;
    if (!v.known_hosts.empty()) c.known_hosts = v.known_hosts;
    c.accept_new = v.accept_new;
    c.connect_timeout_s = v.connect_timeout.value_or(10);
    s.keepalive_s = v.keepalive.value_or(5);
    s.keepalive_count = v.keepalive_count.value_or(3);
    s.backoff_max_s = v.backoff_max.value_or(30);
    if (!v.probe.empty()) s.probe = parse_host_port(v.probe);
    s.once = v.once;
    s.events = v.events;
    for (const auto& x : v.local) s.rules.push_back(parse_rule(Kind::local, x));
    for (const auto& x : v.remote) s.rules.push_back(parse_rule(Kind::remote, x));
    for (const auto& x : v.dynamic) s.rules.push_back(parse_rule(Kind::dynamic, x));
    for (auto& r : file_rules) s.rules.push_back(std::move(r));
    if (s.rules.empty()) throw ParseError("nothing to forward: give -L, -R, -D or [[forward]] tables");
    for (std::size_t i = 0; i < s.rules.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (s.rules[i] == s.rules[j]) throw ParseError("forward given twice: " + s.rules[i].str());
    return s;
}

}  // namespace tn::forward
