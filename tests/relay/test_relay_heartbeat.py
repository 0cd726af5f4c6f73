"""Relay protocol 6: a connected vnet moves to the route's current heartbeat interval (a HEARTBEAT frame
behind a PONG, doc/PROTOCOL.relay.md §5 step 5), a version-5 hello is still answered (and never gets
the frame), and a version-6 vnet told off by a version-5 route exits 69 asking for the route's update.

The interval moves once per 1,000 sessions; TN_TEST_ROUTE_EXTRA_SESSIONS (a test-only knob of
tn-route) makes it count 4,999 more than it holds, so a second vnet moves it from 5 s to 6 s. The PINGs
that carry the update are driven with `tn-vnet ctl ping` and by hand, not by waiting for timers."""
import hashlib
import hmac
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(__file__))
from relay_env import Relay, wait_for, wire_frame, wire_text, TOKEN  # noqa: E402
import harness  # noqa: E402

HELLO = b"TNRL"
CHALLENGE, AUTH, WELCOME, ERROR, PING, PONG, HEARTBEAT = 0x01, 0x02, 0x03, 0x04, 0x30, 0x31, 0x32
LINK_PARK = 0x65


class RawVnet:
    """A control (or link) connection that speaks the wire by hand with the hello version it is given,
    over plain TCP (the route has tls = false, so the proofs bind 32 zero bytes)."""

    def __init__(self, port, version):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.s.sendall(HELLO + struct.pack(">HH", version, 0))
        hello = self.read(8)
        assert hello[:4] == HELLO, hello
        self.route_version = struct.unpack(">H", hello[4:6])[0]
        t, nr = self.frame()
        assert t == CHALLENGE and len(nr) == 32, (t, nr)
        self.nr = nr

    def read(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise EOFError(f"route closed after {b!r}")
            b += c
        return b

    def frame(self):
        t, flags, n = struct.unpack(">HHI", self.read(8))
        assert flags == 0
        return t, self.read(n)

    def auth(self, name, group=b"g"):
        nv = os.urandom(32)
        mac = hmac.new(TOKEN.encode(), b"tn-relay-5 vnet" + self.nr + nv + group + b"\0" + name + b"\0" * 32,
                       hashlib.sha256).digest()
        self.s.sendall(wire_frame(AUTH, wire_text(group) + wire_text(name) + struct.pack(">Q", int.from_bytes(os.urandom(8), "big")) + nv + mac))
        while True:
            t, p = self.frame()
            if t == WELCOME:
                self.vnet_id, self.ticket, self.heartbeat_ms = p[:4], p[4:20], struct.unpack(">I", p[52:56])[0]
                return self
            assert t != ERROR, p

    def pings(self, count=2):
        """PINGs one after another, each answered before the next: every frame the route sent up to the
        last PONG (so all it sent behind the earlier ones), as (type, payload)."""
        got = []
        for token in range(1, count + 1):
            self.s.sendall(wire_frame(PING, struct.pack(">Q", token)))
            while True:
                t, p = self.frame()
                got.append((t, p))
                if t == PONG and p == struct.pack(">Q", token):
                    break
        return got

    def close(self):
        self.s.close()


def heartbeats(frames):
    return [struct.unpack(">I", p)[0] for t, p in frames if t == HEARTBEAT]


def moved_to(relay, name, ms):
    return relay.log(name).count(f"the route set the heartbeat interval to {ms} ms")


def start(monkeypatch, tls=True):
    monkeypatch.setenv("TN_TEST_ROUTE_EXTRA_SESSIONS", "4999")  # one vnet: 5,000 sessions (5 s); two: 6 s
    relay = Relay(tls=tls)
    relay.start_route()
    return relay


def test_a_connected_vnet_moves_to_the_routes_interval_once_and_back(monkeypatch):
    relay = start(monkeypatch)
    try:
        relay.start_vnet("a")
        relay.wait_connected("a")
        relay.ctl("a", "ping")
        relay.ctl("a", "ping")
        assert moved_to(relay, "a", 6000) == 0 and moved_to(relay, "a", 5000) == 0, "5 s is what WELCOME gave"
        # A second session: 5,001 count, the route's interval is 6 s. a learns it from the PONG to its
        # next PING (and only then); b got 6 s in WELCOME.
        relay.start_vnet("b")
        relay.wait_connected("b")
        relay.ctl("a", "ping")
        wait_for(lambda: moved_to(relay, "a", 6000) == 1, what="a moved to 6 s")
        # Sent once: the PONGs of later PINGs go alone (the second PONG follows anything the first
        # one carried, so it is logged by then).
        relay.ctl("a", "ping")
        relay.ctl("a", "ping")
        assert moved_to(relay, "a", 6000) == 1
        relay.ctl("b", "ping")
        relay.ctl("b", "ping")
        assert "set the heartbeat interval" not in relay.log("b"), "b's WELCOME already gave the route's interval"
        # b leaves: 5,000 again, and a's next PONG moves it back to 5 s.
        relay.stop("b")
        wait_for(lambda: len(relay.status()["vnets"]) == 1, what="b's session gone")
        relay.ctl("a", "ping")
        wait_for(lambda: moved_to(relay, "a", 5000) == 1, what="a moved back to 5 s")
    finally:
        print(relay.all_logs())
        relay.close()


def test_a_version_5_hello_is_answered_as_5_and_its_session_keeps_the_welcome_interval(monkeypatch):
    relay = start(monkeypatch, tls=False)
    old = new = None
    try:
        old = RawVnet(relay.port, 5).auth(b"old")  # 5,000 sessions counted: 5 s
        new = RawVnet(relay.port, 6).auth(b"new")  # 5,001: 6 s
        assert (old.route_version, new.route_version) == (5, 6), "a version-5 vnet refuses any other hello"
        assert (old.heartbeat_ms, new.heartbeat_ms) == (5000, 6000)
        assert heartbeats(new.pings()) == [], "new was welcomed with the route's interval"
        assert heartbeats(old.pings()) == [], "a version-5 session keeps its WELCOME's interval"
        # The same case for the version-6 session: old leaves, the route is back at 5 s, new is not.
        old.close()
        wait_for(lambda: len(relay.status()["vnets"]) == 1, what="old's session gone")
        got = new.pings()
        assert heartbeats(got) == [5000], got
        assert [t for t, _ in got][:2] == [PONG, HEARTBEAT], "the HEARTBEAT rides right behind the PONG"
        assert heartbeats(new.pings()) == [], "sent once"
        # A link connection starts the same with either hello: the route answers 5 and its challenge.
        link = RawVnet(relay.port, 5)
        assert link.route_version == 5
        link.close()
    finally:
        for r in (old, new):
            if r:
                r.close()
        print(relay.all_logs())
        relay.close()


class FakeRouteV5(harness.TcpService):
    """What a version-5 tn-route does with a version-6 hello: its own hello and CHALLENGE first (it
    sends them without waiting), then ERROR version, then it closes."""

    def __init__(self):
        super().__init__(self.answer)

    @staticmethod
    def answer(c):
        with c:
            c.sendall(HELLO + struct.pack(">HH", 5, 0) + wire_frame(CHALLENGE, os.urandom(32)))
            got = b""
            while len(got) < 8:
                b = c.recv(8 - len(got))
                if not b:
                    break
                got += b
            v = struct.unpack(">H", got[4:6])[0] if len(got) == 8 else 0
            msg = f"this tn-route speaks relay protocol version 5, the vnet speaks {v}: update tn-route".encode()
            c.sendall(wire_frame(ERROR, struct.pack(">H", 1) + wire_text(msg)))


def test_a_version_6_vnet_against_a_version_5_route_exits_69_asking_for_the_routes_update():
    relay = Relay(tls=False)
    fake = FakeRouteV5()
    try:
        relay.port = fake.port
        p = relay.start_vnet("a")
        assert p.wait(timeout=30) == 69, relay.log("a")
        assert "route speaks relay protocol version 5, we speak 6: update tn-route" in relay.log("a")
    finally:
        fake.close()
        print(relay.all_logs())
        relay.close()
