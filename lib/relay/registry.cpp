// The registry's rules: static ids kept or refused, dynamic ids assigned, groups kept apart, limits.
#include "relay/registry.hpp"

#include <algorithm>

namespace tn::relay {

AddVnetResult Registry::add_vnet(const std::string& group, const std::string& name, std::uint64_t instance) {
    AddVnetResult r;
    // A vnet that reconnects before the route noticed its old session died takes that session's place,
    // so its static ids are not refused as conflicts with itself.
    for (const auto& [id, v] : vnets_) {
        if (v.group == group && v.instance == instance && instance != 0) {
            r.replaced = id;
            break;
        }
    }
    if (r.replaced) r.freed = remove_vnet(*r.replaced);
    std::size_t in_group = std::count_if(vnets_.begin(), vnets_.end(), [&](auto& p) { return p.second.group == group; });
    if (in_group >= limits_.vnets_per_group) {
        r.message = "limit: group '" + group + "' already has " + std::to_string(in_group) + " vnets";
        return r;
    }
    r.ok = true;
    r.id = next_vnet_++;
    vnets_[r.id] = VnetRecord{r.id, group, name, instance};
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
                out.push_back(std::move(s->second));
                s = g->second.erase(s);
            } else {
                ++s;
            }
        }
        if (g->second.empty()) serves_.erase(g);
    }
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
    if (g->second.empty()) serves_.erase(g);
    return out;
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

std::vector<VnetRecord> Registry::vnets(std::string_view group) const {
    std::vector<VnetRecord> out;
    for (const auto& [id, v] : vnets_)
        if (v.group == group) out.push_back(v);
    return out;
}

std::vector<VnetRecord> Registry::all_vnets() const {
    std::vector<VnetRecord> out;
    for (const auto& [id, v] : vnets_) out.push_back(v);
    return out;
}

std::vector<std::string> Registry::groups() const {
    std::set<std::string> g;
    for (const auto& [id, v] : vnets_) g.insert(v.group);
    return {g.begin(), g.end()};
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
