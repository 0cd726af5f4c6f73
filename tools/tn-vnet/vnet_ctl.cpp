// tn-vnet's command grammar (the vnet terminal: show, ping, unserve, serve/use ops, reload), shared
// by `tn-vnet ctl` over the Unix control socket and the interactive terminal.
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "base/error.hpp"
#include "base/runtime_dir.hpp"
#include "base/strings.hpp"
#include "relay/io_accept.hpp"
#include "relay/io_control.hpp"
#include "vnet_agent.hpp"

namespace tn::vnet {

using namespace relay;

namespace {
constexpr const char* kUsage =
    "commands: show serve|use|serves|vnet|vnets · ping · unserve VNETID [IP:]PORT [--local [IP:]PORT] ·\n"
    "  serve open|close|delete NAME · serve new|run NAME [IP:]PORT [ID] [--type tcp|udp] · use open|close|delete NAME "
    "·\n"
    "  use new|run NAME ID [[IP:]PORT] [--type tcp|udp] · reload [FILE]   (add --json for JSON)\n";

// Names, infos and messages come from other vnets and the route: in text output each stays one
// field of one row, with no control bytes to forge rows or drive the terminal.
std::string esc(std::string_view s) { return escape_controls(s); }

HostPort host_port_or_port(const std::string& s, const std::string& default_ip) {
    if (s.find(':') == std::string::npos) return HostPort{default_ip, parse_port(s, s)};
    return parse_host_port(s);
}

// The fields a serve's own config and an entry of the route's list share, in the same order in both
// JSON views.
template <class Spec>
void spec_json(std::ostream& o, const Spec& s) {
    o << "\"name\":" << json_quote_text(s.name) << ",\"type\":" << json_quote_text(s.type)
      << ",\"ip\":" << json_quote_text(s.ip) << ",\"port\":" << s.port << ",\"info\":" << json_quote_text(s.info)
      << ",\"remote_port\":" << s.remote_port;
}

std::string serve_json(const LocalServe& s) {
    std::ostringstream o;
    o << "{\"id\":" << (s.registered ? s.id : s.cfg.id) << ",";
    spec_json(o, s.cfg);
    o << ",\"active\":" << (s.cfg.active ? "true" : "false") << ",\"registered\":" << (s.registered ? "true" : "false")
      << ",\"state\":" << json_quote_text(s.state_text()) << ",\"unserve\":" << (s.unserve ? "true" : "false")
      << ",\"links\":" << s.open_links << ",\"custom_domains\":[";
    for (std::size_t i = 0; i < s.cfg.custom_domains.size(); ++i)
        o << (i ? "," : "") << json_quote_text(s.cfg.custom_domains[i]);
    o << "]}";
    return o.str();
}

std::string use_json(const LocalUse& u) {
    std::ostringstream o;
    o << "{\"name\":" << json_quote_text(u.cfg.name) << ",\"id\":" << u.cfg.id
      << ",\"ip\":" << json_quote_text(u.cfg.ip) << ",\"port\":" << (u.bound_port ? u.bound_port : u.cfg.port)
      << ",\"active\":" << (u.cfg.active ? "true" : "false") << ",\"state\":" << json_quote_text(u.state_text())
      << ",\"links\":" << u.open_links << ",\"type\":" << json_quote_text(u.cfg.type);
    if (u.cfg.type == "udp") {
        // The flows now and since attach; `dropped`: datagrams from new sources refused at the cap,
        // `queue_dropped`: datagrams of open flows dropped while their link was full or opening, and
        // any over 65,507 bytes (IPv6 allows larger; a frame does not).
        const auto* t = u.udp ? &u.udp->table() : nullptr;
        o << ",\"udp\":{\"flows\":" << (t ? t->open() : 0) << ",\"flows_total\":" << (t ? t->opened_total() : 0)
          << ",\"expired\":" << (t ? t->expired_total() : 0) << ",\"dropped\":" << (t ? t->dropped() : 0)
          << ",\"queue_dropped\":" << (u.udp ? u.udp->dropped_queue() : 0) << ",\"max_flows\":" << u.cfg.udp_max_flows
          << ",\"idle_timeout\":" << u.cfg.udp_idle_timeout << "}";
    }
    o << "}";
    return o.str();
}
}  // namespace

std::string VnetAgent::show(const std::string& what, bool json) const {
    std::ostringstream o;
    if (what == "serve") {
        if (json) {
            o << "[";
            for (std::size_t i = 0; i < serves_.size(); ++i) o << (i ? "," : "") << serve_json(serves_[i]);
            o << "]\n";
        } else {
            o << "id\tname\ttype\tip\tport\tstate\tinfo\n";
            for (const auto& s : serves_)
                o << (s.registered ? s.id : s.cfg.id) << "\t" << esc(s.cfg.name) << "\t" << esc(s.cfg.type) << "\t"
                  << esc(s.cfg.ip) << "\t" << s.cfg.port << "\t" << esc(s.state_text()) << "\t" << esc(s.cfg.info)
                  << "\n";
        }
    } else if (what == "use") {
        if (json) {
            o << "[";
            for (std::size_t i = 0; i < uses_.size(); ++i) o << (i ? "," : "") << use_json(uses_[i]);
            o << "]\n";
        } else {
            o << "name\tid\tip\tport\tstate\n";
            for (const auto& u : uses_)
                o << esc(u.cfg.name) << "\t" << u.cfg.id << "\t" << esc(u.cfg.ip) << "\t"
                  << (u.bound_port ? u.bound_port : u.cfg.port) << "\t" << esc(u.state_text()) << "\n";
        }
    } else if (what == "serves") {
        if (json) o << "[";
        else
            o << "id\tvnet\tname\ttype\tip\tport\tinfo\n";
        bool first = true;
        for (const auto& [id, e] : available_) {
            if (json) {
                o << (first ? "" : ",") << "{\"id\":" << id << ",\"vnet\":" << e.vnet_id
                  << ",\"vnet_name\":" << json_quote_text(e.vnet_name) << ",";
                spec_json(o, e.spec);
                o << "}";
            } else {
                o << id << "\t" << e.vnet_id << "\t" << esc(e.spec.name) << "\t" << esc(e.spec.type) << "\t"
                  << esc(e.spec.ip) << "\t" << e.spec.port << "\t" << esc(e.spec.info) << "\n";
            }
            first = false;
        }
        if (json) o << "]\n";
        else
            o << "- " << available_.size() << " serves in group " << esc(cfg_.group) << " -\n";
    } else if (what == "vnet") {
        if (json) {
            o << "{\"name\":" << json_quote_text(cfg_.name) << ",\"group\":" << json_quote_text(cfg_.group)
              << ",\"route\":" << json_quote_text(current_route().str()) << ",\"routes\":[";
            for (std::size_t i = 0; i < cfg_.routes.size(); ++i)
                o << (i ? "," : "") << json_quote_text(cfg_.routes[i].str());
            o << "],\"route_index\":" << cursor_.current() << ",\"tls\":" << (cfg_.tls ? "true" : "false")
              << ",\"connected\":" << (connected_ ? "true" : "false") << ",\"vnet_id\":" << vnet_id_
              << ",\"allow_unserve\":" << (cfg_.allow_unserve ? "true" : "false")
              << ",\"unserve_remote\":" << (cfg_.unserve_remote ? "true" : "false")
              << ",\"unserve_num\":" << cfg_.unserve_num << ",\"links_total\":" << links_total_
              << ",\"bytes\":" << bytes_total_ << ",\"e2e\":" << (cfg_.e2e_secret ? "true" : "false")
              << ",\"e2e_refused\":" << e2e_refused_ << "}\n";
        } else {
            o << "name " << esc(cfg_.name) << "  group " << esc(cfg_.group) << "  route " << esc(current_route().str())
              << (cfg_.routes.size() > 1
                      ? " (" + std::to_string(cursor_.current() + 1) + " of " + esc(routes_text(cfg_.routes)) + ")"
                      : "")
              << (connected_ ? "  connected as vnet " + std::to_string(vnet_id_) : "  not connected") << "\n"
              << "allow_unserve " << cfg_.allow_unserve << "  unserve_remote " << cfg_.unserve_remote
              << "  unserve_num " << cfg_.unserve_num << "  links " << links_total_ << "  bytes " << bytes_total_
              << "\n";
        }
    }
    return o.str();
}

// One ctl/terminal command as its handlers see it: the words without the flags, the flags, and
// where its reply goes.
struct VnetAgent::CtlCall {
    std::vector<std::string> w;
    bool json = false;
    std::string local;  // --local [IP:]PORT (unserve)
    std::string type;   // --type tcp|udp (serve|use new|run)
    ReplyFn reply;
    void usage(const std::string& why) const { reply(Reply{64, why + "\n" + kUsage}); }
    void ok(const std::string& text) const {
        reply(Reply{0, json ? "{\"ok\":true,\"message\":" + json_quote_text(text) + "}\n" : text + "\n"});
    }
    void not_connected() const { reply(Reply{69, "not connected to the route\n"}); }
    // --json, --local [IP:]PORT and --type T may stand anywhere among the words.
    static CtlCall from_words(const std::vector<std::string>& in, ReplyFn reply) {
        CtlCall c;
        c.reply = std::move(reply);
        for (std::size_t i = 0; i < in.size(); ++i) {
            if (in[i] == "--json") c.json = true;
            else if (in[i] == "--local" && i + 1 < in.size())
                c.local = in[++i];
            else if (in[i] == "--type" && i + 1 < in.size())
                c.type = in[++i];
            else
                c.w.push_back(in[i]);
        }
        return c;
    }
};

namespace {
std::string vnets_text(const Vnets& v, bool json) {
    std::ostringstream o;
    if (json) o << "[";
    else
        o << "vnet\tname\tserves\n";
    for (std::size_t i = 0; i < v.vnets.size(); ++i) {
        const auto& x = v.vnets[i];
        if (json)
            o << (i ? "," : "") << "{\"id\":" << x.id << ",\"name\":" << json_quote_text(x.name)
              << ",\"serves\":" << x.serves << "}";
        else
            o << x.id << "\t" << esc(x.name) << "\t" << x.serves << "\n";
    }
    if (json) o << "]\n";
    return o.str();
}
}  // namespace

void VnetAgent::command(const std::vector<std::string>& in, ReplyFn reply) {
    using Handler = void (VnetAgent::*)(const CtlCall&);
    static const std::map<std::string, Handler, std::less<>> handlers{
        {"show", &VnetAgent::ctl_show},   {"ping", &VnetAgent::ctl_ping}, {"unserve", &VnetAgent::ctl_unserve},
        {"serve", &VnetAgent::ctl_serve}, {"use", &VnetAgent::ctl_use},   {"reload", &VnetAgent::ctl_reload}};
    auto c = CtlCall::from_words(in, std::move(reply));
    try {
        if (c.w.empty() || c.w[0] == "help") return c.reply(Reply{c.w.empty() ? 64 : 0, kUsage});
        auto h = handlers.find(c.w[0]);
        if (h == handlers.end()) return c.usage("unknown command '" + c.w[0] + "'");
        if (!c.type.empty()) {
            bool creates =
                (c.w[0] == "serve" || c.w[0] == "use") && c.w.size() > 1 && (c.w[1] == "new" || c.w[1] == "run");
            if (!creates) return c.usage("--type belongs to serve|use new|run");
            if (c.type != "tcp" && c.type != "udp") return c.usage("--type must be tcp or udp, not '" + c.type + "'");
        }
        (this->*h->second)(c);
    } catch (const ParseError& e) {
        return c.usage(e.what());
    } catch (const Error& e) {
        return c.reply(Reply{to_int(e.code()), std::string(e.what()) + "\n"});
    }
}

void VnetAgent::ctl_show(const CtlCall& c) {
    const auto& w = c.w;
    if (w.size() != 2) return c.usage("show needs one of serve|use|serves|vnet|vnets");
    if (w[1] != "vnets") {
        if (w[1] != "serve" && w[1] != "use" && w[1] != "serves" && w[1] != "vnet")
            return c.usage("unknown: show " + w[1]);
        return c.reply(Reply{0, show(w[1], c.json)});
    }
    if (!connected_) return c.not_connected();
    auto req = next_req_++;
    waiting_[req] = [reply = c.reply, json = c.json](const Frame& f) {
        reply(Reply{0, vnets_text(from_frame<Vnets>(f), json)});
    };
    send(to_frame(VnetsReq{req}));
}

void VnetAgent::ctl_ping(const CtlCall& c) {
    if (!connected_) return c.not_connected();
    auto token = random_u64();
    pings_[token] = {
        Clock::now(), [reply = c.reply, json = c.json](Reply r) {
            if (r.code) return reply(r);
            reply(Reply{0, json ? "{\"rtt_ms\":" + r.body + "}\n" : "pong from route: " + r.body + " ms\n"});
        }};
    send(to_frame(Ping{token}));
}

void VnetAgent::ctl_unserve(const CtlCall& c) {
    const auto& w = c.w;
    if (w.size() != 3) return c.usage("unserve VNETID [IP:]PORT [--local [IP:]PORT]");
    auto target = parse_int(w[1], 1, 0xffffffff);
    if (!target) return c.usage("bad VNETID '" + w[1] + "'");
    auto hp = host_port_or_port(w[2], "127.0.0.1");
    if (!connected_) return c.not_connected();
    auto req = next_req_++;
    waiting_[req] = [this, reply = c.reply, json = c.json, local = c.local](const Frame& f) {
        auto r = from_frame<UnserveResult>(f);
        if (!r.ok) return reply(Reply{77, "unserve refused: " + esc(r.message) + "\n"});
        std::string text = "unserve granted: serve id " + std::to_string(r.id);
        if (!local.empty()) text += map_unserved(r.id, local);
        reply(Reply{
            0, json ? "{\"ok\":true,\"id\":" + std::to_string(r.id) + ",\"message\":" + json_quote_text(text) + "}\n"
                    : text + "\n"});
    };
    send(to_frame(UnserveReq{req, static_cast<std::uint32_t>(*target), hp.host, hp.port}));
}

std::string VnetAgent::map_unserved(std::uint16_t id, const std::string& local) {
    LocalUse u;
    u.cfg.name = "unserve-" + std::to_string(id);
    u.cfg.id = id;
    auto lhp = host_port_or_port(local, "127.0.0.1");
    u.cfg.ip = lhp.host;
    u.cfg.port = lhp.port;
    if (use_by_name(u.cfg.name)) detach(*use_by_name(u.cfg.name), UseState::inactive);
    else
        uses_.push_back(u);
    attach(*use_by_name(u.cfg.name));
    return ", mapped on " + lhp.str() + " (" + use_by_name(u.cfg.name)->state_text() + ")";
}

void VnetAgent::ctl_serve(const CtlCall& c) {
    const auto& w = c.w;
    if (w.size() < 3) return c.usage(w[0] + " open|close|new|run|delete NAME ...");
    const auto& op = w[1];
    const auto& name = w[2];
    auto* s = serve_by_name(name);
    if (op == "new" || op == "run") {
        if (s) return c.usage("serve '" + name + "' exists");
        return ctl_serve_new(c);
    }
    if (!s) return c.reply(Reply{65, "no serve '" + name + "'\n"});
    if (op == "open") {
        s->cfg.active = true;
        if (!s->registered) register_serve(*s);
        return c.ok("serve '" + name + "' opened");
    }
    if (op == "close" || op == "delete") {
        s->cfg.active = false;
        unregister_serve(*s);
        if (op == "delete") serves_.erase(serves_.begin() + (s - serves_.data()));
        return c.ok("serve '" + name + "' " + (op == "close" ? "closed" : "deleted"));
    }
    c.usage("unknown serve operation '" + op + "'");
}

// serve new|run NAME [IP:]PORT [ID]
void VnetAgent::ctl_serve_new(const CtlCall& c) {
    const auto& w = c.w;
    const auto& op = w[1];
    const auto& name = w[2];
    if (w.size() < 4) return c.usage("serve " + op + " NAME [IP:]PORT [ID]");
    LocalServe ls;
    ls.cfg.name = name;
    auto hp = host_port_or_port(w[3], "127.0.0.1");
    ls.cfg.ip = hp.host;
    ls.cfg.port = hp.port;
    if (w.size() > 4) {
        auto id = parse_int(w[4], 0, 999);
        if (!id) return c.usage("bad id '" + w[4] + "'");
        ls.cfg.id = static_cast<std::uint16_t>(*id);
    }
    if (!c.type.empty()) ls.cfg.type = c.type;
    ls.cfg.active = op == "run";
    serves_.push_back(ls);
    if (op == "run") register_serve(serves_.back());
    c.ok("serve '" + name + "' " + (op == "run" ? "registering" : "created (inactive)"));
}

void VnetAgent::ctl_use(const CtlCall& c) {
    const auto& w = c.w;
    if (w.size() < 3) return c.usage(w[0] + " open|close|new|run|delete NAME ...");
    const auto& op = w[1];
    const auto& name = w[2];
    auto* u = use_by_name(name);
    if (op == "new" || op == "run") {
        if (u) return c.usage("use '" + name + "' exists");
        return ctl_use_new(c);
    }
    if (!u) return c.reply(Reply{65, "no use '" + name + "'\n"});
    if (op == "open") {
        u->cfg.active = true;
        if (!u->listening()) attach(*u);
        return c.ok("use '" + name + "' " + u->state_text());
    }
    if (op == "close" || op == "delete") {
        u->cfg.active = false;
        detach(*u, UseState::inactive);
        if (op == "delete") uses_.erase(uses_.begin() + (u - uses_.data()));
        return c.ok("use '" + name + "' " + (op == "close" ? "closed" : "deleted"));
    }
    c.usage("unknown use operation '" + op + "'");
}

// use new|run NAME ID [[IP:]PORT]
void VnetAgent::ctl_use_new(const CtlCall& c) {
    const auto& w = c.w;
    const auto& op = w[1];
    const auto& name = w[2];
    if (w.size() < 4) return c.usage("use " + op + " NAME ID [[IP:]PORT]");
    LocalUse lu;
    lu.cfg.name = name;
    auto id = parse_int(w[3], 1, 999);
    if (!id) return c.usage("bad id '" + w[3] + "'");
    lu.cfg.id = static_cast<std::uint16_t>(*id);
    if (w.size() > 4) {
        auto hp = host_port_or_port(w[4], "127.0.0.1");
        lu.cfg.ip = hp.host;
        lu.cfg.port = hp.port;
    }
    if (!c.type.empty()) lu.cfg.type = c.type;  // a udp use takes the default udp_idle_timeout and udp_max_flows
    lu.cfg.active = op == "run";
    uses_.push_back(lu);
    if (op == "run") attach(uses_.back());
    c.ok("use '" + name + "' " + (op == "run" ? uses_.back().state_text() : "created (inactive)"));
}

void VnetAgent::ctl_reload(const CtlCall& c) { reload(c.w.size() > 1 ? c.w[1] : cfg_.source, c.reply); }

std::filesystem::path private_state_dir() {
    // The control socket accepts commands that open ports and register serves: the directory it lives
    // in must be ours alone, or another local user could replace the socket or reach it.
    auto dir = ensure_state_dir();
    require_private_dir(dir);
    return dir;
}

void VnetAgent::start_ctl() {
    private_state_dir();
    ctl_path_ = ctl_socket_path(cfg_);
    ctl_acceptor_ = relay::bind_control_socket(io_, ctl_path_);
    accept_ctl();
}

void VnetAgent::accept_ctl() {
    relay::LocalAcceptLoop::start(
        ctl_acceptor_,
        {[this](asio::local::stream_protocol::socket sock) {
             if (stopped_) return;
             serve_ctl(std::make_shared<asio::local::stream_protocol::socket>(std::move(sock)));
         },
         [this](const std::string& m) { log_.warn(m); }, nullptr},
        "the control socket");
}

void VnetAgent::serve_ctl(std::shared_ptr<asio::local::stream_protocol::socket> s) {
    auto foreign = foreign_peer(s->native_handle());
    relay::serve_control(s, [this, foreign](std::vector<std::string> words,
                                            std::function<void(ControlReply)> reply_to) {
        // The line is read (and dropped) first: closing on an unread request would reset the
        // connection and the caller would never see why.
        if (foreign) {
            log_.warn("control socket: refused a connection from uid ", static_cast<long>(*foreign), " (not our user)");
            return reply_to(Reply{77, "refused: this tn-vnet takes commands from its own user only\n"});
        }
        command(words, reply_to);
    });
}

}  // namespace tn::vnet
