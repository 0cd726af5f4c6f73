// Writes the binary seed corpora of fuzz/corpus/ from the project's own encoders and the golden
// bytes of the unit tests, so every target starts from well-formed input of each kind it parses:
//   build-fuzz/fuzz/make_seeds fuzz/corpus      (after `ninja -C build-fuzz fuzz/make_seeds`)
// Text seeds (HTTP heads, TOML, SOCKS5) come from fuzz/make_seeds.py.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "relay/messages.hpp"
#include "relay/seal.hpp"
#include "tun/offload.hpp"
#include "tools/tn-exec/persist_wire.hpp"
#include "tun/wire.hpp"

namespace fs = std::filesystem;
using namespace tn::relay;

namespace {

fs::path root;

void write(const std::string& target, const std::string& name, const std::vector<std::uint8_t>& b) {
    fs::create_directories(root / target);
    std::ofstream(root / target / name, std::ios::binary).write(reinterpret_cast<const char*>(b.data()),
                                                                 static_cast<std::streamsize>(b.size()));
}

template <class M> std::vector<std::uint8_t> framed(const M& m) {
    auto h = encode_hello();
    std::vector<std::uint8_t> out(h.begin(), h.end());
    auto f = encode_frame(to_frame(m));
    out.insert(out.end(), f.begin(), f.end());
    return out;
}

void relay_wire() {
    Mac mac{};
    for (std::size_t i = 0; i < mac.size(); ++i) mac[i] = static_cast<std::uint8_t>(i);
    ServeSpec spec;
    spec.name = "web";
    spec.port = 8080;
    spec.remote_port = 9000;
    spec.domains = {"example.com", "*.example.org"};
    write("relay_wire", "challenge", framed(Challenge{}));
    write("relay_wire", "auth", framed(Auth{"home", "laptop", 7, {}, mac}));
    write("relay_wire", "welcome", framed(Welcome{3, {}, mac, 5000}));
    write("relay_wire", "error", framed(ErrorMsg{ErrorCode::auth, "bad token"}));
    write("relay_wire", "serve", framed(Serve{1, spec}));
    write("relay_wire", "serve_result", framed(ServeResult{1, true, 4, "ok"}));
    write("relay_wire", "serve_up", framed(ServeUp{ServeEntry{spec, 3, "laptop"}}));
    write("relay_wire", "vnets", framed(Vnets{2, {{1, "a", 2}, {3, "b", 0}}}));
    write("relay_wire", "ping", framed(Ping{0x0102030405060708ULL}));  // the unit test's golden bytes
    write("relay_wire", "heartbeat", framed(Heartbeat{10000}));
    write("relay_wire", "unserve_req", framed(UnserveReq{5, 3, "127.0.0.1", 22}));
    write("relay_wire", "unserve_reply", framed(UnserveReply{5, false, 0, "busy"}));
    write("relay_wire", "link_request", framed(LinkRequest{1, 0x02bc, true}));
    write("relay_wire", "link_fail", framed(LinkFail{9, "refused"}));
    write("relay_wire", "link_open", framed(LinkOpen{3, 4, mac, 1, {}}));
    write("relay_wire", "link_accept", framed(LinkAccept{3, 9, mac}));
    write("relay_wire", "link_ok", framed(LinkOk{5, 0, {}}));
    write("relay_wire", "link_park", framed(LinkPark{0x01020304, mac}));
    write("relay_wire", "link_standby", framed(LinkStandby{3, mac}));
    write("relay_wire", "link_opened", framed(LinkOpened{77}));
    // A session's worth of frames in one stream.
    auto many = framed(Challenge{});
    for (const auto& f : {encode_frame(to_frame(Ping{1})), encode_frame(to_frame(ServeClose{4})),
                          encode_frame(to_frame(ServeDown{4})), encode_frame(to_frame(VnetsReq{8}))})
        many.insert(many.end(), f.begin(), f.end());
    write("relay_wire", "stream", many);
}

void relay_records() {
    LinkKey key{};
    for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i * 7 + 1);  // the target's key
    for (int c = 0; c < 3; ++c) {
        // Sealed as the using side sends: the target opens as the serving side would.
        RecordSealer tx(static_cast<Cipher>(c), key, Side::use);
        std::vector<std::uint8_t> out{static_cast<std::uint8_t>(c)};
        std::vector<std::uint8_t> rec(100 + kRecordOverhead);
        const std::uint8_t hello[] = "hello over a link";
        out.insert(out.end(), rec.begin(), rec.begin() + static_cast<long>(tx.seal(std::span(hello, sizeof hello), rec.data())));
        out.insert(out.end(), rec.begin(), rec.begin() + static_cast<long>(tx.seal_eof(rec.data(), true)));
        write("relay_records", "cipher" + std::to_string(c), out);
    }
}

void tun_wire() {
    tn::tun::PushConfig p;
    p.address = tn::tun::parse_ipv4("10.99.0.2");
    p.prefix = 24;
    p.mtu = 1400;
    p.dns = {tn::tun::parse_ipv4("10.99.0.1")};
    p.routes = {tn::tun::parse_cidr("10.88.0.0/16"), tn::tun::parse_cidr("0.0.0.0/0")};
    write("tun_wire", "push", tn::tun::encode_push(p));
    std::vector<std::uint8_t> ip(60, 0xab);
    ip[0] = 0x45, ip[2] = 0, ip[3] = 60;
    write("tun_wire", "ipv4", ip);
    std::vector<std::uint8_t> data(tn::tun::transport_header_len + 32, 0);
    tn::tun::write_transport_header(data.data(), tn::tun::MsgType::data, 0x0a0b0c0d, 5);
    write("tun_wire", "data", data);
    std::string cidr = "10.88.0.0/16";
    write("tun_wire", "cidr", std::vector<std::uint8_t>(cidr.begin(), cidr.end()));
}

void persist_wire() {
    using namespace tn::exec;
    std::string run;
    wire::put_str(run, "run");
    for (const char* s : {"uname -a", "/tmp", "5000", "1"}) wire::put_str(run, s);
    wire::put_u32(run, 1);
    wire::put_str(run, "LANG"), wire::put_str(run, "C");
    wire::put_str(run, "0123456789abcdef0123456789abcdef"), wire::put_str(run, "1");  // --sudo, a password source
    std::string put;
    wire::put_str(put, "put");
    wire::put_u32(put, 5);
    wire::put_u32(put, 2), wire::put_str(put, "a.txt"), wire::put_str(put, "b.txt");
    wire::put_u32(put, 1), wire::put_str(put, "/srv/");
    for (auto [name, payload] : {std::pair{"run", run}, std::pair{"put", put}}) {
        std::string f = "TNX4";
        wire::put_u32(f, static_cast<std::uint32_t>(payload.size()));
        f += payload;
        write("persist_wire", name, std::vector<std::uint8_t>(f.begin(), f.end()));
    }
    std::string old = "TNX1";
    wire::put_u32(old, 0);
    write("persist_wire", "old_version", std::vector<std::uint8_t>(old.begin(), old.end()));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_seeds CORPUS_DIR\n");
        return 64;
    }
    root = argv[1];
    relay_wire();
    relay_records();
    tun_wire();
    persist_wire();
    return 0;
}
