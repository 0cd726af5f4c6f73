// ByteReader and ByteWriter: the one bounded big-endian codec of tn's binary wires (the relay's
// frames, tn-exec's persist socket). The reader is a cursor over a span: every read checks what is
// left and every length-prefixed field has an explicit cap, so a hostile length is an error, never
// an over-read or a huge allocation. The writer appends to a buffer it owns and refuses a string over
// its field's cap or a buffer over its total cap. `E` is the error each wire throws (constructed from
// the message): relay::WireError, or tn-exec's persist error.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>

namespace tn {

template <class E>
class ByteReader {
public:
    // `what` names the whole in messages ("truncated payload").
    explicit ByteReader(std::span<const std::uint8_t> b, std::string_view what = "payload") : b_(b), what_(what) {}
    explicit ByteReader(std::string_view b, std::string_view what = "payload")
        : ByteReader(std::span(reinterpret_cast<const std::uint8_t*>(b.data()), b.size()), what) {}

    std::uint8_t u8() { return take(1)[0]; }
    std::uint16_t u16() { return static_cast<std::uint16_t>(be(take(2))); }
    std::uint32_t u32() { return static_cast<std::uint32_t>(be(take(4))); }
    std::uint64_t u64() { return be(take(8)); }
    // The next `n` bytes, as a view into the input.
    std::span<const std::uint8_t> bytes(std::size_t n) { return take(n); }
    template <std::size_t N>
    std::array<std::uint8_t, N> fixed() {
        auto s = take(N);
        std::array<std::uint8_t, N> a{};
        std::copy(s.begin(), s.end(), a.begin());
        return a;
    }
    // A string with a u16 (str16) or u32 (str32) length before it, of at most `cap` bytes; `field`
    // names it in the error.
    std::string str16(std::size_t cap, std::string_view field) { return str(u16(), cap, field); }
    std::string str32(std::size_t cap, std::string_view field) { return str(u32(), cap, field); }

    std::size_t consumed() const { return pos_; }
    std::size_t remaining() const { return b_.size() - pos_; }
    // Every byte must have been consumed: trailing garbage is an error, not an extension point.
    void finish() const {
        if (pos_ != b_.size()) throw E(std::to_string(b_.size() - pos_) + " trailing bytes in " + std::string(what_));
    }

private:
    std::span<const std::uint8_t> take(std::size_t n) {
        if (remaining() < n) throw E("truncated " + std::string(what_));
        auto s = b_.subspan(pos_, n);
        pos_ += n;
        return s;
    }
    static std::uint64_t be(std::span<const std::uint8_t> s) {
        std::uint64_t v = 0;
        for (auto c : s) v = (v << 8) | c;
        return v;
    }
    std::string str(std::uint64_t n, std::size_t cap, std::string_view field) {
        if (n > cap)
            throw E(std::string(field) + " is " + std::to_string(n) + " bytes (cap " + std::to_string(cap) + ")");
        auto s = take(static_cast<std::size_t>(n));
        return std::string(s.begin(), s.end());
    }

    std::span<const std::uint8_t> b_;
    std::string_view what_;
    std::size_t pos_ = 0;
};

// `Buf`: std::vector<std::uint8_t> or std::string.
template <class Buf, class E>
class ByteWriter {
public:
    // `start`: bytes already there (appended to); `cap`: the most the buffer may hold.
    explicit ByteWriter(Buf start = {}, std::size_t cap = std::numeric_limits<std::size_t>::max())
        : b_(std::move(start)), cap_(cap) {}

    void u8(std::uint8_t v) { be(v, 1); }
    void u16(std::uint16_t v) { be(v, 2); }
    void u32(std::uint32_t v) { be(v, 4); }
    void u64(std::uint64_t v) { be(v, 8); }
    void raw(std::span<const std::uint8_t> v) {
        room(v.size());
        b_.insert(b_.end(), v.begin(), v.end());
    }
    // A u16- (str16) or u32- (str32) length-prefixed string of at most `cap` bytes.
    void str16(std::string_view s, std::size_t cap) { str(s, std::min<std::size_t>(cap, 0xffff), 2); }
    void str32(std::string_view s, std::size_t cap) { str(s, std::min<std::size_t>(cap, 0xffffffff), 4); }

    std::size_t size() const { return b_.size(); }
    Buf take() { return std::move(b_); }

private:
    void room(std::size_t n) {
        if (n > cap_ - std::min(cap_, b_.size()))
            throw E("encoded message over its cap of " + std::to_string(cap_) + " bytes");
    }
    void be(std::uint64_t v, int n) {
        room(static_cast<std::size_t>(n));
        for (int i = n - 1; i >= 0; --i) b_.push_back(static_cast<typename Buf::value_type>(v >> (8 * i)));
    }
    void str(std::string_view s, std::size_t cap, int len_bytes) {
        if (s.size() > cap) throw E("string field over its cap");
        room(static_cast<std::size_t>(len_bytes) + s.size());  // all or nothing
        be(s.size(), len_bytes);
        b_.insert(b_.end(), s.begin(), s.end());
    }

    Buf b_;
    std::size_t cap_;
};

}  // namespace tn
