// The route's per-vnet and per-serve traffic book (see route_traffic.hpp).
#include "route_traffic.hpp"

#include <algorithm>

namespace tn::route {

namespace {
void add_bytes(Traffic& t, std::uint64_t in, std::uint64_t out) {
    t.bytes_in += in;
    t.bytes_out += out;
}
}  // namespace

void TrafficBook::vnet_down(const Key& k) {
    auto it = book_.find(k);
    if (it == book_.end() || it->second.live == 0) return;
    if (--it->second.live) return;
    it->second.left = ++downs_;
    forget_departed();
}

void TrafficBook::forget_departed() {
    std::size_t departed = std::count_if(book_.begin(), book_.end(), [](const auto& e) { return !e.second.live; });
    while (departed > kKeepDeparted) {
        auto oldest = book_.end();
        for (auto it = book_.begin(); it != book_.end(); ++it)
            if (!it->second.live && it->second.total.open == 0 && (oldest == book_.end() || it->second.left < oldest->second.left))
                oldest = it;
        if (oldest == book_.end()) return;  // all of them still have links open: they go later
        book_.erase(oldest);
        --departed;
    }
}

void TrafficBook::opened(const LinkTag& t) {
    auto& v = book_[{t.group, t.serve_vnet}];
    auto& s = v.serves[t.serve];
    ++s.links, ++s.open, ++v.total.links, ++v.total.open;
    if (t.user_vnet.empty()) return;
    auto& u = book_[{t.group, t.user_vnet}].total;
    ++u.links, ++u.open;
}

void TrafficBook::closed(const LinkTag& t, std::uint64_t in, std::uint64_t out, bool error) {
    auto& v = book_[{t.group, t.serve_vnet}];
    auto& s = v.serves[t.serve];
    for (Traffic* x : {&s, &v.total}) {
        add_bytes(*x, in, out);
        if (x->open) --x->open;
        if (error) ++x->errors;
    }
    if (!t.user_vnet.empty()) {
        auto& u = book_[{t.group, t.user_vnet}].total;
        add_bytes(u, out, in);  // the using vnet receives what the serve sends
        if (u.open) --u.open;
        if (error) ++u.errors;
    }
}

void TrafficBook::failed(const std::string& group, const std::string& serve_vnet, std::uint16_t serve) {
    auto& v = book_[{group, serve_vnet}];
    ++v.serves[serve].errors;
    ++v.total.errors;
}

void TrafficBook::live(std::map<Key, Vnet>& book, const LinkTag& t, std::uint64_t in, std::uint64_t out) {
    auto& v = book[{t.group, t.serve_vnet}];
    add_bytes(v.serves[t.serve], in, out);
    add_bytes(v.total, in, out);
    if (!t.user_vnet.empty()) add_bytes(book[{t.group, t.user_vnet}].total, out, in);
}

}  // namespace tn::route
