// The route's registry core (doc/PROTOCOL.relay.md §6): vnets, serves and their id rules, groups,
// remote ports and limits. No I/O and no clock: the route's runner calls it and carries out the result.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "relay/messages.hpp"

namespace tn::relay {

inline constexpr std::uint16_t kDynamicMin = 1, kDynamicMax = 499, kStaticMin = 500, kStaticMax = 999;

struct Limits {
    std::size_t vnets_per_group = 64;
    std::size_t serves_per_vnet = 64;
};

struct VnetRecord {
    std::uint32_t id = 0;
    std::string group;
    std::string name;
    std::uint64_t instance = 0;
};

struct ServeRecord {
    ServeSpec spec;  // spec.id is the id in force
    std::uint32_t vnet_id = 0;
    std::string vnet_name;
    std::string group;
    ServeEntry entry() const { return ServeEntry{spec, vnet_id, vnet_name}; }
};

struct AddVnetResult {
    bool ok = false;
    std::uint32_t id = 0;
    std::string message;                  // why not, when !ok
    std::optional<std::uint32_t> replaced;  // a stale session of the same instance, already removed
    std::vector<ServeRecord> freed;       // the replaced session's serves
};

struct AddServeResult {
    bool ok = false;
    std::uint16_t id = 0;
    bool reassigned = false;  // a dynamic id the route changed
    std::string message;
};

class Registry {
public:
    explicit Registry(Limits limits = {}) : limits_(limits) {}

    AddVnetResult add_vnet(const std::string& group, const std::string& name, std::uint64_t instance);
    // Removes the vnet and everything it registered; returns the serves that went away.
    std::vector<ServeRecord> remove_vnet(std::uint32_t id);

    AddServeResult add_serve(std::uint32_t vnet_id, ServeSpec spec);
    std::optional<ServeRecord> remove_serve(std::uint32_t vnet_id, std::uint16_t id);

    const VnetRecord* vnet(std::uint32_t id) const;
    const ServeRecord* find_serve(std::string_view group, std::uint16_t id) const;
    std::vector<ServeRecord> serves(std::string_view group) const;
    // One vnet's serves, without copying its group's (status lists them vnet by vnet).
    std::vector<const ServeRecord*> serves_of(std::uint32_t vnet_id) const;
    std::vector<VnetRecord> vnets(std::string_view group) const;
    // The ids of a group's vnets in id order (empty for a group with none): what a message to a whole
    // group walks, rather than every vnet of the route (10,000 vnets in 200 groups: 50, not 10,000).
    const std::set<std::uint32_t>& members(std::string_view group) const;
    std::vector<VnetRecord> all_vnets() const;
    std::vector<std::string> groups() const;
    std::size_t serve_count(std::uint32_t vnet_id) const;
    std::size_t vnet_count() const { return vnets_.size(); }
    // The serve an HTTP request for `host` goes to: an exact custom domain first, then the most specific
    // "*.suffix" wildcard. `host` is the Host header as sent (any case, optional :port, trailing dot).
    const ServeRecord* find_by_host(std::string_view host) const;
    std::size_t domain_count() const { return domains_.size(); }
    const Limits& limits() const { return limits_; }

private:
    Limits limits_;
    std::uint32_t next_vnet_ = 1;
    std::map<std::uint32_t, VnetRecord> vnets_;
    // Indexes of vnets_ (registration looks up by them): each group's vnets, and who holds an instance.
    std::map<std::string, std::set<std::uint32_t>, std::less<>> members_;
    std::map<std::pair<std::string, std::uint64_t>, std::uint32_t> by_instance_;
    std::map<std::string, std::map<std::uint16_t, ServeRecord>, std::less<>> serves_;  // group -> id -> serve
    std::set<std::uint16_t> remote_ports_;
    struct DomainOwner {
        std::string group;
        std::uint16_t id = 0;
    };
    // Custom domains are route-wide (one HTTP listener serves every group), so they are unique across groups.
    std::map<std::string, DomainOwner, std::less<>> domains_;
    void drop_domains(const ServeRecord& r);
};

// Checks one custom domain and returns it lowercased: dot-separated labels of [a-z0-9-] (1-63 bytes,
// no leading or trailing '-'), 253 bytes at most, optionally "*." first for a wildcard. Throws
// tn::ParseError saying what is wrong.
std::string normalize_domain(std::string_view domain);
// The Host header's name part, lowercased: port and trailing dot stripped, IPv6 brackets kept.
std::string host_name(std::string_view host);

// The unserve lifetime (as vnet-v2 had it), as a pure timer: a serve made on a peer's request lives `unused_ms`
// (3 min) if nobody connects, and `idle_ms` (1 min) after its last connection closes.
class UnserveTimers {
public:
    UnserveTimers(std::uint64_t unused_ms = 180000, std::uint64_t idle_ms = 60000)
        : unused_ms_(unused_ms), idle_ms_(idle_ms) {}
    void add(std::uint16_t id, std::uint64_t now_ms) { e_[id] = Entry{now_ms, 0, false}; }
    void opened(std::uint16_t id);
    void closed(std::uint16_t id, std::uint64_t now_ms);
    void remove(std::uint16_t id) { e_.erase(id); }
    bool contains(std::uint16_t id) const { return e_.count(id) != 0; }
    std::size_t size() const { return e_.size(); }
    // The ids whose time is up (removed from the set); the caller unregisters them.
    std::vector<std::uint16_t> expire(std::uint64_t now_ms);

private:
    struct Entry {
        std::uint64_t since_ms;  // created, or last connection closed
        std::uint32_t open;
        bool used;
    };
    std::uint64_t unused_ms_, idle_ms_;
    std::map<std::uint16_t, Entry> e_;
};

}  // namespace tn::relay
