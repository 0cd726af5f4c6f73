// The registry's rules: static ids kept or refused, dynamic ids assigned, groups kept apart, limits.
#include "relay/registry.hpp"

#include <algorithm>
#include <cctype>

#include "base/error.hpp"

namespace tn::relay {

AddVnetResult Registry::add_vnet(const std::string& group, const std::string& name, std::uint64_t instance) {
    AddVnetResult r;
    // A vnet that reconnects before the route noticed its old session died takes that session's place,
    // so its static ids are not refused as conflicts with itself. Both look-ups are by index: a route
    // restart registers every vnet at once, and a scan of all vnets per registration made that O(N^2).
    if (instance != 0)
        if (auto it = by_instance_.find({group, instance}); it != by_instance_.end()) r.replaced = it->second;
    if (r.replaced) r.freed = remove_vnet(*r.replaced);
    auto m = members_.find(group);
    std::size_t in_group = m == members_.end() ? 0 : m->second.size();
    if (in_group >= limits_.vnets_per_group) {
        r.message = "limit: group '" + group + "' already has " + std::to_string(in_group) + " vnets";
        return r;
    }
    r.ok = true;
    r.id = next_vnet_++;
    vnets_[r.id] = VnetRecord{r.id, group, name, instance};
    members_[group].insert(r.id);
    if (instance != 0) by_instance_[{group, instance}] = r.id;
    return r;
}

std::vector<ServeRecord> Registry::remove_vnet(std::uint32_t id) {
    std::vector<ServeRecord> out;
    auto it = vnets_.find(id);
    if (it == vnets_.end()) return out;
    auto g = serves_.find(it->second.group);
    if (g != serves_.end()) {
        for (auto s = g->second.begin(); s != g->second.end();) {
            if (s->second.vnet_id == id) {
                if (s->second.spec.remote_port) remote_ports_.erase(s->second.spec.remote_port);
                drop_domains(s->second);
                out.push_back(std::move(s->second));
                s = g->second.erase(s);
            } else {
                ++s;
            }
        }
        if (g->second.empty()) serves_.erase(g);
    }
    if (auto m = members_.find(it->second.group); m != members_.end() && m->second.erase(id) && m->second.empty()) members_.erase(m);
    if (auto b = by_instance_.find({it->second.group, it->second.instance}); b != by_instance_.end() && b->second == id) by_instance_.erase(b);
    vnets_.erase(it);
    return out;
}

AddServeResult Registry::add_serve(std::uint32_t vnet_id, ServeSpec spec) {
    AddServeResult r;
    auto v = vnets_.find(vnet_id);
    if (v == vnets_.end()) {
        r.message = "unknown vnet";
        return r;
    }
    if (spec.id > kStaticMax) {
        r.message = "id " + std::to_string(spec.id) + " is out of range 1-999";
        return r;
    }
    if (spec.port == 0) {
        r.message = "serve '" + spec.name + "' has no port";
        return r;
    }
    if (serve_count(vnet_id) >= limits_.serves_per_vnet) {
        r.message = "limit: this vnet already has " + std::to_string(limits_.serves_per_vnet) + " serves";
        return r;
    }
    auto& table = serves_[v->second.group];
    if (spec.remote_port && remote_ports_.count(spec.remote_port)) {
        r.message = "remote_port " + std::to_string(spec.remote_port) + " is already taken";
        if (table.empty()) serves_.erase(v->second.group);
        return r;
    }
    if (spec.domains.size() > kMaxDomains) {
        r.message = "serve '" + spec.name + "' has more than " + std::to_string(kMaxDomains) + " custom domains";
        if (table.empty()) serves_.erase(v->second.group);
        return r;
    }
    auto refuse = [&](std::string why) {
        r.message = std::move(why);
        if (table.empty()) serves_.erase(v->second.group);
        return r;
    };
    for (auto& d : spec.domains) {
        try {
            d = normalize_domain(d);
        } catch (const ParseError& e) {
            return refuse("custom domain '" + d + "': " + e.what());
        }
    }
    for (const auto& d : spec.domains)
        if (domains_.count(d) || std::count(spec.domains.begin(), spec.domains.end(), d) > 1)
            return refuse("custom domain '" + d + "' is already routed to another serve");
    if (spec.id >= kStaticMin) {
        if (auto c = table.find(spec.id); c != table.end()) {
            r.message = "conflict: static id " + std::to_string(spec.id) + " is already served by vnet " +
                        std::to_string(c->second.vnet_id) + " (" + c->second.vnet_name + ")";
            return r;
        }
        r.id = spec.id;
    } else if (spec.id >= kDynamicMin && !table.count(spec.id)) {
        r.id = spec.id;
    } else {
        for (std::uint16_t i = kDynamicMin; i <= kDynamicMax; ++i) {
            if (!table.count(i)) {
                r.id = i;
                break;
            }
        }
        if (r.id == 0) {
            r.message = "limit: every dynamic id 1-499 is taken in this group";
            return r;
        }
        r.reassigned = spec.id != 0;
    }
    r.ok = true;
    spec.id = r.id;
    if (spec.remote_port) remote_ports_.insert(spec.remote_port);
    for (const auto& d : spec.domains) domains_[d] = DomainOwner{v->second.group, r.id};
    table[r.id] = ServeRecord{std::move(spec), vnet_id, v->second.name, v->second.group};
    return r;
}

std::optional<ServeRecord> Registry::remove_serve(std::uint32_t vnet_id, std::uint16_t id) {
    auto v = vnets_.find(vnet_id);
    if (v == vnets_.end()) return std::nullopt;
    auto g = serves_.find(v->second.group);
    if (g == serves_.end()) return std::nullopt;
    auto s = g->second.find(id);
    if (s == g->second.end() || s->second.vnet_id != vnet_id) return std::nullopt;  // not this vnet's to remove
    ServeRecord out = std::move(s->second);
    g->second.erase(s);
    if (out.spec.remote_port) remote_ports_.erase(out.spec.remote_port);
    drop_domains(out);
    if (g->second.empty()) serves_.erase(g);
    return out;
}

void Registry::drop_domains(const ServeRecord& r) {
    for (const auto& d : r.spec.domains) {
        auto it = domains_.find(d);
        if (it != domains_.end() && it->second.group == r.group && it->second.id == r.spec.id) domains_.erase(it);
    }
}

const ServeRecord* Registry::find_by_host(std::string_view host) const {
    auto name = host_name(host);
    if (name.empty()) return nullptr;
    auto hit = [&](std::string_view key) -> const ServeRecord* {
        auto it = domains_.find(key);
        return it == domains_.end() ? nullptr : find_serve(it->second.group, it->second.id);
    };
    if (auto* r = hit(name)) return r;
    // a.b.example.com tries *.b.example.com, then *.example.com, then *.com: the most specific wins.
    for (auto dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1))
        if (auto* r = hit("*" + name.substr(dot))) return r;
    return nullptr;
}

std::string normalize_domain(std::string_view domain) {
    std::string d;
    for (char c : domain) d += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (d.empty()) throw ParseError("empty domain");
    if (d.size() > kDomainMax) throw ParseError("longer than 253 bytes");
    std::string_view rest = d;
    if (rest.rfind("*.", 0) == 0) {
        rest.remove_prefix(2);
        if (rest.empty()) throw ParseError("a wildcard needs a domain after '*.'");
        // Any of them would take other people's names (and their cookies) off the route.
        if (rest.find('.') == std::string_view::npos) throw ParseError("a wildcard over a whole top-level domain is not allowed");
    }
    std::size_t start = 0;
    while (start <= rest.size()) {
        auto end = rest.find('.', start);
        if (end == std::string_view::npos) end = rest.size();
        auto label = rest.substr(start, end - start);
        if (label.empty() || label.size() > 63) throw ParseError("each dot-separated label must be 1-63 bytes");
        for (char c : label)
            if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-'))
                throw ParseError(std::string("'") + c + "' is not allowed (letters, digits, '-', '.', and '*.' first for a wildcard)");
        if (label.front() == '-' || label.back() == '-') throw ParseError("a label may not start or end with '-'");
        start = end + 1;
    }
    return d;
}

std::string host_name(std::string_view host) {
    std::string h;
    for (char c : host) h += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!h.empty() && h.front() == '[') {
        auto close = h.find(']');
        return close == std::string::npos ? std::string() : h.substr(0, close + 1);
    }
    if (auto colon = h.rfind(':'); colon != std::string::npos) h.resize(colon);
    while (!h.empty() && h.back() == '.') h.pop_back();
    return h;
}

const VnetRecord* Registry::vnet(std::uint32_t id) const {
    auto it = vnets_.find(id);
    return it == vnets_.end() ? nullptr : &it->second;
}

const ServeRecord* Registry::find_serve(std::string_view group, std::uint16_t id) const {
    auto g = serves_.find(group);
    if (g == serves_.end()) return nullptr;
    auto s = g->second.find(id);
    return s == g->second.end() ? nullptr : &s->second;
}

std::vector<ServeRecord> Registry::serves(std::string_view group) const {
    std::vector<ServeRecord> out;
    if (auto g = serves_.find(group); g != serves_.end())
        for (const auto& [id, s] : g->second) out.push_back(s);
    return out;
}

std::vector<const ServeRecord*> Registry::serves_of(std::uint32_t vnet_id) const {
    std::vector<const ServeRecord*> out;
    auto v = vnets_.find(vnet_id);
    if (v == vnets_.end()) return out;
    if (auto g = serves_.find(v->second.group); g != serves_.end())
        for (const auto& [id, s] : g->second)
            if (s.vnet_id == vnet_id) out.push_back(&s);
    return out;
}

const std::set<std::uint32_t>& Registry::members(std::string_view group) const {
    static const std::set<std::uint32_t> none;
    auto m = members_.find(group);
    return m == members_.end() ? none : m->second;
}

std::vector<VnetRecord> Registry::vnets(std::string_view group) const {
    std::vector<VnetRecord> out;
    for (auto id : members(group)) out.push_back(vnets_.at(id));
    return out;
}

std::vector<VnetRecord> Registry::all_vnets() const {
    std::vector<VnetRecord> out;
    for (const auto& [id, v] : vnets_) out.push_back(v);
    return out;
}

std::vector<std::string> Registry::groups() const {
    std::vector<std::string> out;
    for (const auto& [g, ids] : members_) out.push_back(g);
    return out;
}

std::size_t Registry::serve_count(std::uint32_t vnet_id) const {
    auto v = vnets_.find(vnet_id);
    if (v == vnets_.end()) return 0;
    auto g = serves_.find(v->second.group);
    if (g == serves_.end()) return 0;
    return std::count_if(g->second.begin(), g->second.end(), [&](auto& p) { return p.second.vnet_id == vnet_id; });
}

void UnserveTimers::opened(std::uint16_t id) {
    if (auto it = e_.find(id); it != e_.end()) {
        ++it->second.open;
        it->second.used = true;
    }
}

void UnserveTimers::closed(std::uint16_t id, std::uint64_t now_ms) {
    if (auto it = e_.find(id); it != e_.end()) {
        if (it->second.open) --it->second.open;
        if (it->second.open == 0) it->second.since_ms = now_ms;
    }
}

std::vector<std::uint16_t> UnserveTimers::expire(std::uint64_t now_ms) {
    std::vector<std::uint16_t> out;
    for (auto it = e_.begin(); it != e_.end();) {
        const auto& e = it->second;
        std::uint64_t ttl = e.used ? idle_ms_ : unused_ms_;
        if (e.open == 0 && now_ms >= e.since_ms + ttl) {
            out.push_back(it->first);
            it = e_.erase(it);
        } else {
            ++it;
        }
    }
    return out;
}

}  // namespace tn::relay
