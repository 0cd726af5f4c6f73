// Unit tests of tn-forward's LinkCore: keepalive liveness, backoff and probes, remote binds, --once,
// reload diffs. A fake clock; every run is exact (seeded jitter).
#include <catch2/catch.hpp>

#include <algorithm>

#include "link_core.hpp"

using namespace tn::forward;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

struct Rig {
    TimePoint now{seconds(1000)};
    LinkCore core;

    explicit Rig(CoreSettings s) : core(std::move(s), 42) {}

    Actions connect() {
        Actions a = core.start(now);
        REQUIRE(a.connect);
        return core.on_connected(now);
    }
    Actions at(milliseconds later) {
        now += later;
        return core.tick(now);
    }
};

CoreSettings settings(int keepalive_s, int count, std::vector<Rule> rules = {}) {
    CoreSettings s;
    s.keepalive = seconds(keepalive_s);
    s.keepalive_count = count;
    s.rules = std::move(rules);
    return s;
}

bool has(const Actions& a, Note::Type t) {
    return std::any_of(a.notes.begin(), a.notes.end(), [t](const Note& n) { return n.type == t; });
}

}  // namespace

TEST_CASE("1x1 keepalives: a server that answers each one is never lost") {
    Rig r(settings(1, 1));
    r.connect();
    for (int round = 0; round < 50; ++round) {
        Actions a = r.at(milliseconds(1000));
        REQUIRE(a.keepalive);
        REQUIRE_FALSE(a.teardown);
        r.now += milliseconds(3);
        r.core.on_heard(r.now);  // the answer
    }
    CHECK(r.core.state() == LinkCore::State::connected);
}

TEST_CASE("keepalives count as OpenSSH's: count unanswered ones after the last byte, then one more interval") {
    for (int count : {1, 2, 3}) {
        Rig r(settings(5, count));
        r.connect();
        for (int k = 1; k <= count; ++k) {
            Actions a = r.at(seconds(5));
            CHECK(a.keepalive);
            CHECK(r.core.unanswered() == k);
        }
        Actions lost = r.at(seconds(5));
        CHECK(lost.teardown);
        CHECK(has(lost, Note::Type::lost));
        CHECK(has(lost, Note::Type::reconnecting));
        CHECK(r.core.state() == LinkCore::State::waiting);
    }
}

TEST_CASE("anything heard answers all keepalives and restarts the interval") {
    Rig r(settings(5, 2));
    r.connect();
    CHECK(r.at(seconds(5)).keepalive);
    CHECK(r.at(seconds(5)).keepalive);
    r.core.on_heard(r.now + milliseconds(1));
    CHECK(r.core.unanswered() == 0);
    CHECK(r.core.next_deadline() == r.now + milliseconds(1) + seconds(5));
    CHECK_FALSE(r.at(seconds(4)).keepalive);  // quiet for less than an interval since the answer
}

TEST_CASE("--once: a loss exits 75 and announces no reconnect") {
    auto s = settings(1, 1);
    s.once = true;
    Rig r(s);
    r.connect();
    r.at(seconds(1));
    Actions a = r.at(seconds(1));
    CHECK(a.exit == 75);
    CHECK(has(a, Note::Type::lost));
    CHECK_FALSE(has(a, Note::Type::reconnecting));
    Rig f(s);
    REQUIRE(f.core.start(f.now).connect);
    CHECK(f.core.on_connect_failed(f.now).exit == 75);
}

TEST_CASE("after a loss the backoff starts at 250-500 ms and doubles with failed attempts, capped") {
    auto s = settings(1, 1);
    s.backoff_max = seconds(4);
    Rig r(s);
    r.connect();
    r.core.on_closed(r.now, "closed");
    auto first = r.core.next_deadline();  // the next probe comes first
    CHECK(first == r.now + LinkCore::probe_every);
    long long last = 0;
    for (int attempt = 0; attempt < 8; ++attempt) {
        // Wait out the backoff with probes that find the server answering TCP (no shortcut).
        Actions a;
        while (!a.connect) {
            a = r.at(milliseconds(50));
            if (a.probe_server) a = r.core.on_server_probe(r.now, true);
        }
        Actions failed = r.core.on_connect_failed(r.now);
        CHECK(failed.probe_server);
        auto delay = std::find_if(failed.notes.begin(), failed.notes.end(),
                                  [](const Note& n) { return n.type == Note::Type::reconnecting; })->value;
        CHECK(delay <= 4000);
        if (attempt < 3) CHECK(delay >= last);
        last = delay;
        r.core.on_server_probe(r.now, true);
    }
    CHECK(last >= 2000);  // capped at 4 s, jittered down to no less than half
}

TEST_CASE("a server that did not answer TCP and then does is tried at once, not after the backoff") {
    Rig r(settings(5, 3));
    r.connect();
    r.core.on_closed(r.now, "closed");
    REQUIRE(r.core.on_connect_failed(r.now).probe_server);  // not reached: as when the link is down
    CHECK(r.core.on_server_probe(r.now, false).connect == false);
    Actions again = r.at(LinkCore::probe_every);
    REQUIRE(again.probe_server);
    Actions go = r.core.on_server_probe(r.now, true);
    CHECK(go.connect);
    CHECK(r.core.state() == LinkCore::State::connecting);
}

TEST_CASE("a remote bind refused retries every 250 ms, says so on the 1st and 41st refusal") {
    Rule rule = parse_rule(Kind::remote, "6000:127.0.0.1:22");
    Rig r(settings(60, 3, {rule}));
    Actions up = r.connect();
    REQUIRE(up.binds == std::vector<std::size_t>{0});
    int said = 0;
    for (int i = 0; i < 41; ++i) {
        Actions a = r.core.on_bind(r.now, 0, BindOutcome::refused, 0);
        said += has(a, Note::Type::bind_refused);
        CHECK(r.core.next_deadline() == r.now + LinkCore::bind_retry_every);
        CHECK(r.at(milliseconds(249)).binds.empty());
        CHECK(r.at(milliseconds(1)).binds == std::vector<std::size_t>{0});
    }
    CHECK(said == 2);
    Actions ok = r.core.on_bind(r.now, 0, BindOutcome::granted, 0);
    CHECK(has(ok, Note::Type::forward_up));
    CHECK(has(ok, Note::Type::all_up));
    CHECK(r.core.remotes()[0].bound_port == 6000);
}

TEST_CASE("a bind the request slot could not take is retried shortly; a closed session is a loss") {
    Rule rule = parse_rule(Kind::remote, "0:127.0.0.1:22");
    Rig r(settings(60, 3, {rule}));
    r.connect();
    r.core.on_bind(r.now, 0, BindOutcome::busy, 0);
    CHECK(r.at(LinkCore::busy_retry).binds == std::vector<std::size_t>{0});
    r.core.on_bind(r.now, 0, BindOutcome::granted, 41234);
    CHECK(r.core.remotes()[0].bound_port == 41234);  // port 0: the server's choice
    r.core.on_closed(r.now, "x");
    Rig c(settings(60, 3, {rule}));
    c.connect();
    Actions lost = c.core.on_bind(c.now, 0, BindOutcome::closed, 0);
    CHECK(lost.teardown);
}

TEST_CASE("--probe: keepalive_count failed network probes are a loss; an answered one resets") {
    auto s = settings(1, 2);
    s.probe = "192.0.2.1:53";
    Rig r(s);
    r.connect();
    Actions a = r.at(seconds(1));
    REQUIRE(a.probe_network);
    r.core.on_heard(r.now);
    CHECK_FALSE(r.core.on_network_probe(r.now, false).teardown);
    REQUIRE(r.at(seconds(1)).probe_network);
    r.core.on_heard(r.now);
    CHECK_FALSE(r.core.on_network_probe(r.now, true).teardown);
    REQUIRE(r.at(seconds(1)).probe_network);
    r.core.on_heard(r.now);
    r.core.on_network_probe(r.now, false);
    REQUIRE(r.at(seconds(1)).probe_network);
    Actions lost = r.core.on_network_probe(r.now, false);
    CHECK(lost.teardown);
    CHECK(lost.notes.at(0).text == "probe 192.0.2.1:53 failed");
}

TEST_CASE("reload: only the difference is applied") {
    Rule keep = parse_rule(Kind::local, "8080:127.0.0.1:80");
    Rule drop_l = parse_rule(Kind::dynamic, "1080");
    Rule drop_r = parse_rule(Kind::remote, "6000:127.0.0.1:22");
    Rule add_l = parse_rule(Kind::local, "8081:127.0.0.1:81");
    Rule add_r = parse_rule(Kind::remote, "6001:127.0.0.1:22");
    Rig r(settings(60, 3, {keep, drop_l, drop_r}));
    r.connect();
    r.core.on_bind(r.now, 0, BindOutcome::granted, 0);
    Actions a = r.core.reload(r.now, {keep, add_l, add_r});
    CHECK(a.close_listeners == std::vector<Rule>{drop_l});
    CHECK(a.open_listeners == std::vector<Rule>{add_l});
    REQUIRE(a.cancels.size() == 1);
    CHECK(a.cancels[0].rule == drop_r);
    CHECK(a.cancels[0].port == 6000);
    CHECK(a.binds == std::vector<std::size_t>{0});
    CHECK(r.core.remotes().at(0).rule == add_r);
    CHECK_FALSE(a.teardown);
}
