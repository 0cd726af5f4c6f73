// keyed_diff: what a reload changes, as a pure function of the old and the new configuration (the
// shape of rathole's calculate_events). Both inputs are ranges of entries; `key` names an entry (a
// forward rule, a group name, a serve name) and `same` says whether an entry whose key is in both
// needs no work. A reload then applies `removed` first, `changed` next, `added` last, and leaves every
// other entry alone: a reload never restarts what it did not change.
//
//     auto d = keyed_diff(old.groups, next.groups, [](const Group& g) { return g.name; },
//                         [](const Group& a, const Group& b) { return a.token == b.token; });
//     for (const Group& g : d.removed) revoke(g.name);
//     for (const auto& c : d.changed) revoke(c.key);    // c.before, c.after: the two entries
//     for (const Group& g : d.added) admit(g);
//
// Keys are unique within each input (configuration loaders reject duplicates); were one repeated, its
// first entry counts. Keys with operator< are indexed (n log n), keys with only == are compared
// pairwise, which is fine for the tens of entries a configuration has.
#pragma once

#include <concepts>
#include <functional>
#include <map>
#include <ranges>
#include <type_traits>
#include <vector>

namespace tn {

template <class Key, class Entry>
struct KeyedChange {
    Key key;
    Entry before, after;
};

template <class Key, class Entry>
struct KeyedDiff {
    std::vector<Entry> removed;                    // only in the old input, in its order
    std::vector<KeyedChange<Key, Entry>> changed;  // in both and not `same`, in the new input's order
    std::vector<Entry> added;                      // only in the new input, in its order
    bool empty() const { return removed.empty() && changed.empty() && added.empty(); }
};

namespace detail {

// Finds an entry by key: a std::map index when keys are ordered, a linear search otherwise.
template <class Key, class Entry>
class KeyIndex {
public:
    template <class R, class KeyFn>
    KeyIndex(const R& entries, KeyFn& key) {
        for (const auto& e : entries) {
            if constexpr (std::totally_ordered<Key>) {
                index_.try_emplace(std::invoke(key, e), &e);
            } else {
                Key k = std::invoke(key, e);
                if (!find(k)) list_.emplace_back(std::move(k), &e);
            }
        }
    }
    const Entry* find(const Key& k) const {
        if constexpr (std::totally_ordered<Key>) {
            auto it = index_.find(k);
            return it == index_.end() ? nullptr : it->second;
        } else {
            for (const auto& [lk, e] : list_)
                if (lk == k) return e;
            return nullptr;
        }
    }

private:
    std::map<Key, const Entry*> index_;
    std::vector<std::pair<Key, const Entry*>> list_;
};

}  // namespace detail

template <std::ranges::forward_range R, class KeyFn, class Same = std::equal_to<>>
auto keyed_diff(const R& old_entries, const R& new_entries, KeyFn key, Same same = {}) {
    using Entry = std::remove_cvref_t<std::ranges::range_value_t<R>>;
    using Key = std::remove_cvref_t<std::invoke_result_t<KeyFn&, const Entry&>>;
    detail::KeyIndex<Key, Entry> old_index(old_entries, key), new_index(new_entries, key);
    KeyedDiff<Key, Entry> d;
    for (const auto& e : old_entries) {
        Key k = std::invoke(key, e);
        if (!new_index.find(k) && old_index.find(k) == &e) d.removed.push_back(e);
    }
    for (const auto& e : new_entries) {
        Key k = std::invoke(key, e);
        if (new_index.find(k) != &e) continue;  // a repeated key: its first entry counted
        const Entry* before = old_index.find(k);
        if (!before) d.added.push_back(e);
        else if (!std::invoke(same, *before, e)) d.changed.push_back({std::move(k), *before, e});
    }
    return d;
}

}  // namespace tn
