"""Sealed links (protocol 2) seen from the wire: a recording relay between the vnets and the route
keeps every byte of every connection. With tls = true a marker pushed through a proxied connection
both ways never appears in them (and does with tls = false, so the check can fail); a link cut
without its EOF record or tampered with on the way resets only that proxied connection."""
import contextlib
import hashlib
import os
import socket
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from relay_env import Relay, roundtrip, wait_for, echo  # noqa: E402,F401,F811
from recorder import Recorder  # noqa: E402
import harness  # noqa: E402


def chain(tls, echo, pool=2):
    """Route, recorder in front of it, home serving the echo server, office using it."""
    relay = Relay(tls=tls)
    relay.start_route()
    rec = Recorder(relay.port)
    relay.port = rec.port  # the vnets' configs point at the recorder; route.toml is already written
    use_port = harness.free_port()
    relay.start_vnet("home", serves=[{"name": "echo", "id": 700, "port": echo.port}], extra_vnet=f"link_pool = {pool}")
    relay.start_vnet("office", uses=[{"name": "echo", "id": 700, "port": use_port}], extra_vnet=f"link_pool = {pool}")
    relay.wait_use("office", "echo")
    return relay, rec, use_port


def exchange(sock, data):
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        b = sock.recv(65536)
        if not b:
            raise ConnectionError("closed early")
        got += b
    return got


def pools_settled(relay, pool, using="office", serving="home"):
    """Waits (on the route's own counts, not on time) until no proxied link is open or in setup and
    both pools are refilled: the using vnet's parked links and the serving vnet's standby links. A
    loaded machine may refill late; a fixed sleep would then let refills land in a measurement."""
    def settled():
        st = relay.status()
        if st["links"]["active"] or st["links"]["pending"]:
            return False
        by_name = {v["name"]: v for v in st["vnets"]}
        return (using is None or by_name[using]["pooled_links"] >= pool) and by_name[serving]["standby_links"] >= pool
    wait_for(settled, timeout=30, what="pools refilled and no link in setup")


def pools_settled_around(relay, pool=2):
    """As pools_settled, with proxied connections still bound: both pools are full again."""
    def full():
        by_name = {v["name"]: v for v in relay.status()["vnets"]}
        return by_name["office"]["pooled_links"] >= pool and by_name["home"]["standby_links"] >= pool
    wait_for(full, timeout=30, what="pools refilled")


def ends_with_reset(port, data):
    """Connects, sends `data` and reads: the connection must end with a reset, and never bring data or
    a clean end. On a loaded machine the reset can come before our connect() returns or before the
    send, so whichever step sees it counts (EPIPE only follows a reset we have not read yet)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
    except ConnectionResetError:
        return True
    with s:
        try:
            s.sendall(data)
            got = s.recv(100)
        except (ConnectionResetError, BrokenPipeError):
            return True
    return f"got {got!r} instead of a reset"


@pytest.mark.parametrize("tls", [True, False])
@pytest.mark.parametrize("pool", [0, 2])
def test_marker_never_travels_in_clear_with_tls(echo, tls, pool):
    relay, rec, use_port = chain(tls, echo, pool)
    try:
        marker = b"TN-MARKER-" + os.urandom(8).hex().encode()
        # Small and large writes: one record, and many records per read.
        for payload in (marker, marker * 5000):
            assert roundtrip(use_port, payload)[1] == len(payload)
        s = socket.create_connection(("127.0.0.1", use_port), timeout=10)
        assert exchange(s, marker + b" half-close") == marker + b" half-close"
        s.shutdown(socket.SHUT_WR)
        assert s.recv(10) == b""  # the clean end travels as an EOF record and arrives as a FIN
        s.close()
        wait_for(lambda: relay.status()["links"]["active"] == 0, what="links closed")
        conns = rec.everything()
        links = [c for c in conns if c[1][:4] == b"TNRL"]
        assert len(links) >= 6, f"expected link connections through the recorder, got {len(conns)} connections"
        seen = [i for i, up, down in conns if marker in up or marker in down]
        if tls:
            assert seen == [], f"marker in clear on connections {seen}"
            controls = [c for c in conns if c[1][:1] == b"\x16"]
            assert len(controls) == 2, "each vnet's control connection is TLS"
        else:
            ups = [i for i, up, down in conns if marker in up]
            downs = [i for i, up, down in conns if marker in down]
            assert ups and downs, "with tls = false the marker travels in clear both ways"
    finally:
        print(relay.all_logs())
        rec.close()
        relay.close()


def two_bound_connections(relay, rec, use_port):
    """Opens proxied connections A and B, and returns them with A's two link connections (both vnets'
    sides at the recorder), found as the only links that carry A's next bytes."""
    a = socket.create_connection(("127.0.0.1", use_port), timeout=10)
    b = socket.create_connection(("127.0.0.1", use_port), timeout=10)
    assert exchange(a, b"a0") == b"a0"
    assert exchange(b, b"b0") == b"b0"
    pools_settled_around(relay)
    snap = rec.snapshot()
    assert exchange(a, b"a1" * 100) == b"a1" * 100
    # A's two links carried its 200 bytes both ways; anything else that moved meanwhile (a late
    # refill's hello, a heartbeat) moved less.
    links = [c for c in rec.grown_since(snap) if all(n - o >= 200 for n, o in zip(c.sizes(), snap.get(c.index, (0, 0))))]
    assert len(links) == 2, [c.index for c in links]
    return a, b, links


def expect_reset(sock):
    sock.settimeout(10)
    with pytest.raises(ConnectionResetError):
        sock.sendall(b"more")
        while sock.recv(65536):
            pass


@contextlib.contextmanager
def bound_pair(tls, echo):
    """A chain with two bound proxied connections A and B (see two_bound_connections); cleaned up after."""
    relay, rec, use_port = chain(tls, echo)
    try:
        a, b, links = two_bound_connections(relay, rec, use_port)
        yield relay, rec, use_port, a, b, links
        a.close()
        b.close()
    finally:
        print(relay.all_logs())
        rec.close()
        relay.close()


def the_rest_still_works(relay, use_port, b):
    """After A's link broke: B, a new connection and both vnets' sessions are untouched."""
    assert exchange(b, b"b1") == b"b1"
    assert roundtrip(use_port, b"after")[1] == 5
    assert len(relay.status()["vnets"]) == 2


@pytest.mark.parametrize("tls", [True, False])
def test_link_cut_without_eof_record_resets_only_that_connection(echo, tls):
    with bound_pair(tls, echo) as (relay, rec, use_port, a, b, links):
        for c in links:
            rec.cut(c)
        expect_reset(a)
        wait_for(lambda: "truncated" in relay.log("office"), what="office logs the truncation")
        the_rest_still_works(relay, use_port, b)


def test_tampered_record_closes_only_that_link_with_one_log_line(echo):
    with bound_pair(True, echo) as (relay, rec, use_port, a, b, links):
        for c in links:
            with c.lock:
                c.flip_down = True
        a.sendall(b"a2" * 100)
        expect_reset(a)
        wait_for(lambda: "failed authentication" in relay.log("office") + relay.log("home"), what="tamper logged")
        lines = [ln for n in ("office", "home") for ln in relay.log(n).splitlines() if "failed authentication" in ln]
        assert 1 <= len(lines) <= 2, lines  # one per endpoint that received a flipped record
        the_rest_still_works(relay, use_port, b)


@pytest.mark.parametrize("tls", [True, False])
def test_malformed_record_header_closes_only_that_link_pair_with_a_log_line(echo, tls):
    """The route reads every record header, sealed or plain: one it cannot take ends that pair only."""
    with bound_pair(tls, echo) as (relay, rec, use_port, a, b, links):
        office_link = next(c for c in links if c.first_frame() in (0x60, 0x65))  # the using vnet's link
        with office_link.lock:
            office_link.bad_type_up = True
        a.sendall(b"a2" * 100)
        expect_reset(a)
        wait_for(lambda: "unknown record type 9" in relay.log("route"), what="the route logs the bad header")
        assert len([ln for ln in relay.log("route").splitlines() if "unknown record type" in ln]) == 1
        the_rest_still_works(relay, use_port, b)


def test_a_link_open_whose_cipher_byte_was_changed_is_refused(echo):
    """Protocol 5 covers LINK_OPEN's cipher byte by the link proof (and the key boxes' associated
    data): an on-path attacker who turns AES-128-GCM into AES-256-GCM gets the link refused as
    unproven, never bound; the next link, untouched, works."""
    relay, rec, use_port = chain(True, echo, pool=0)
    try:
        rec.flip_open_cipher = True
        assert ends_with_reset(use_port, b"hello?") is True
        wait_for(lambda: "refused: no session proof" in relay.log("route"), what="the route refuses the link")
        assert "failed authentication" not in relay.log("office") + relay.log("home")  # never bound
        rec.flip_open_cipher = False
        data = os.urandom(100000)
        assert roundtrip(use_port, data) == (hashlib.sha256(data).hexdigest(), len(data))
    finally:
        print(relay.all_logs())
        rec.close()
        relay.close()


@pytest.mark.parametrize("tls", [True, False])
def test_serving_side_failure_closes_the_using_connection(tls):
    """The using vnet has its LINK_OK before the serving side answers (one round trip less per
    connection); when the serving side then fails, the route closes that link and the local client's
    connection ends with a reset: a link cut short (no EOF record) is never a clean end, sealed or
    plain (protocol 4 frames plain links too)."""
    relay = Relay(tls=tls)
    try:
        relay.start_route()
        dead, use_port = harness.free_port(), harness.free_port()  # nothing listens on `dead`
        relay.start_vnet("home", serves=[{"name": "dead", "id": 700, "port": dead}])
        relay.start_vnet("office", uses=[{"name": "dead", "id": 700, "port": use_port}])
        relay.wait_use("office", "dead")
        for _ in range(3):
            assert ends_with_reset(use_port, b"hello?") is True
        wait_for(lambda: "local service refused link" in relay.log("home"), what="the serving side logs the refusal")
        wait_for(lambda: relay.status()["links"]["active"] == 0 and relay.status()["links"]["pending"] == 0, what="nothing left")
        assert len(relay.status()["vnets"]) == 2
    finally:
        print(relay.all_logs())
        relay.close()


@pytest.mark.parametrize("tls", [True, False])
def test_reused_links_need_no_new_connection_and_no_control_message(echo, tls):
    """A link goes back to both pools when its two EOF records have passed, with no LINK_DONE and no
    new CHALLENGE (version 2 sent both per connection); since protocol 4 plain links too."""
    relay, rec, use_port = chain(tls, echo)
    try:
        for _ in range(3):  # the first connections may replace pooled links
            assert roundtrip(use_port, b"warm")[1] == 4
        pools_settled(relay, 2)
        snap = rec.snapshot()
        before = len(rec.everything())
        reused = relay.status()["links"]["reused"]
        for i in range(20):
            assert roundtrip(use_port, b"r" * (i + 1))[1] == i + 1
        # Nearly every one reused a link. A few may be new: a pool refills when a connection takes a link
        # before the last one's link is back (the client is faster than the route's last record).
        new = len(rec.everything()) - before
        assert new <= 5, f"{new} of 20 sequential connections opened a new link instead of reusing one"
        # Pre-opened links count as reused from their second connection on.
        assert relay.status()["links"]["reused"] >= reused + 20 - 4 - new
        # The control connections carried at most a heartbeat each (a PING and a PONG every 5 s), not
        # a message per connection: a frame is at least 8 bytes, 20 connections would add > 160 (> 400
        # as TLS records).
        grown = sum(c.sizes()[0] + c.sizes()[1] - sum(snap.get(c.index, (0, 0))) for c in rec.grown_since(snap, links_only=False)
                    if c.is_control())
        assert grown < (200 if tls else 100), f"control connections grew by {grown} bytes over 20 proxied connections"
    finally:
        print(relay.all_logs())
        rec.close()
        relay.close()


class GreetAndClose(harness.TcpService):
    """A service that speaks first and closes first (a banner, then FIN), as SMTP/SSH-style servers
    and HTTP/1.0 servers do: the serving side's EOF record comes before the using side's."""

    def __init__(self):
        super().__init__(self.greet)

    @staticmethod
    def greet(c):
        with contextlib.suppress(OSError):
            c.sendall(b"hi\n")
            c.close()


def greet_clients(port, threads, each):
    """`threads` clients at once, `each` connections one after another: each must read the whole
    greeting and a clean end. Returns what went wrong."""
    failures = []

    def client():
        for _ in range(each):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    got = b""
                    while True:
                        b = s.recv(100)
                        if not b:
                            break
                        got += b
                    if got != b"hi\n":
                        failures.append(got)
            except OSError as e:
                failures.append(repr(e))

    ts = [threading.Thread(target=client) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return failures


@pytest.mark.parametrize("tls", [True, False])
def test_links_reused_right_after_a_server_side_close_carry_the_next_request(tls):
    """When the service closes first, the route parks the serving vnet's link again once the using
    side's EOF record has passed: the next request may follow that record on the same link at once,
    before the serving vnet has read it. Every one of many quick connections must still succeed."""
    srv = GreetAndClose()
    relay = Relay(tls=tls)
    try:
        relay.start_route()
        use_port = harness.free_port()
        relay.start_vnet("home", serves=[{"name": "greet", "id": 700, "port": srv.port}], extra_vnet="link_pool = 1")
        relay.start_vnet("office", uses=[{"name": "greet", "id": 700, "port": use_port}], extra_vnet="link_pool = 1")
        relay.wait_use("office", "greet")
        failures = greet_clients(use_port, 4, 100)
        assert failures == [], f"{len(failures)} of 400 failed, e.g. {failures[:3]}"
        for name in ("home", "office", "route"):
            assert "after the EOF" not in relay.log(name)
    finally:
        print(relay.all_logs())
        srv.close()
        relay.close()


@pytest.mark.parametrize("tls", [True, False])
def test_remote_port_links_are_reused_too(echo, tls):
    """The route is the using end of a remote_port link: after a clean end where both EOF records said
    keep, the link goes back to the serving vnet's standby links and carries the next connection."""
    relay = Relay(tls=tls)
    try:
        relay.start_route()
        rec = Recorder(relay.port)
        relay.port = rec.port
        rport = harness.free_port()
        relay.start_vnet("home", serves=[{"name": "pub", "port": echo.port, "remote_port": rport}], extra_vnet="link_pool = 2")
        wait_for(lambda: relay.status()["remote_ports"] == [rport], what="remote port open")
        for _ in range(3):
            assert roundtrip(rport, b"warm")[1] == 4
        pools_settled(relay, 2, using=None)
        before = len(rec.everything())
        reused = relay.status()["links"]["reused"]
        for i in range(20):
            assert roundtrip(rport, b"p" * (i + 1))[1] == i + 1
        new = len(rec.everything()) - before
        assert new <= 5, f"{new} of 20 sequential remote_port connections opened a new link"
        assert relay.status()["links"]["reused"] >= reused + 20 - 4 - new
    finally:
        print(relay.all_logs())
        rec.close()
        relay.close()


@pytest.mark.parametrize("tls", [True, False])
def test_remote_port_links_reused_right_after_a_server_side_close(tls):
    """As test_links_reused_right_after_a_server_side_close_carry_the_next_request, with the route as
    the using end: many quick connections to a remote_port of a service that closes first."""
    srv = GreetAndClose()
    relay = Relay(tls=tls)
    try:
        relay.start_route()
        rport = harness.free_port()
        relay.start_vnet("home", serves=[{"name": "greet", "port": srv.port, "remote_port": rport}], extra_vnet="link_pool = 1")
        wait_for(lambda: relay.status()["remote_ports"] == [rport], what="remote port open")
        failures = greet_clients(rport, 4, 100)
        assert failures == [], f"{len(failures)} of 400 failed, e.g. {failures[:3]}"
        assert relay.status()["links"]["reused"] > 0
        for name in ("home", "route"):
            assert "after the EOF" not in relay.log(name)
    finally:
        print(relay.all_logs())
        srv.close()
        relay.close()
