"""Route failover: vnets listing two routes ([route] address = [A, B]) with two real tn-route processes
on loopback that share one certificate (so one pinned fingerprint holds for both). Kill -9 of the
first under traffic moves every vnet to the second, where each serve is registered once; the first,
started again, stays empty (vnets stay where they are). A dead first address starts on the second;
bad lists are config errors (78)."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from relay_env import Relay, roundtrip, wait_for, ROUTE, VNET, TOKEN, relay, echo  # noqa: E402,F401,F811
import harness  # noqa: E402

# The issue asks for new connections through the second route within 5 s of the first one's death.
# That figure is measured and printed; the test only fails past this cap, which a loaded machine
# cannot reach unless failover is broken.
FAILOVER_CAP_S = 60


class TwoRoutes:
    """Relay's route as A and a second tn-route B beside it: same folder, so the same default
    certificate and key (tn-route.crt/.key beside the config), same groups."""

    def __init__(self, relay):
        self.relay = relay
        relay.start_route()
        self.a = relay.port
        self.b = harness.free_port()
        self.cfg = {"A": os.path.join(relay.dir, "route.toml"), "B": os.path.join(relay.dir, "route_b.toml")}
        relay.port = self.b
        relay.route_config(self.cfg["B"])
        relay.port = self.a
        fp = subprocess.run([ROUTE, "-q", "-c", self.cfg["B"], "fingerprint"], capture_output=True, text=True,
                            env=relay.env(), check=True).stdout.strip()
        assert fp == relay.fingerprint, "both routes must present the same certificate"
        self.start("B")

    def start(self, which):
        name, port = ("route", self.a) if which == "A" else ("routeB", self.b)
        p = self.relay.spawn(name, [ROUTE, "-c", self.cfg[which]])
        harness.wait_port(port, proc=p)

    def status(self, which):
        r = subprocess.run([ROUTE, "status", "--json", "-c", self.cfg[which]], capture_output=True, text=True,
                           env=self.relay.env(), timeout=10)
        if r.returncode != 0:
            raise OSError(r.stderr)
        return json.loads(r.stdout)

    def addr(self, which):
        return f"127.0.0.1:{self.a if which == 'A' else self.b}"

    def vnet(self, name, routes, **kw):
        """A vnet config whose [route] address is the list `routes` (addresses as written)."""
        path = self.relay.vnet_config(name, **kw)
        with open(path) as f:
            text = f.read()
        listed = "[" + ", ".join(f'"{r}"' for r in routes) + "]"
        text = text.replace(f'address = "127.0.0.1:{self.a}"', f"address = {listed}", 1)
        with open(path, "w") as f:
            f.write(text)
        return path


def serves_on(st):
    """(vnet name, serve id) for every serve a route's status lists."""
    return sorted((v["name"], s["id"]) for v in st["vnets"] for s in v["serves"])


def echo_once(port, data, timeout=30):
    """One new connection through `port` to the echo server: True when all of `data` came back. A
    connection cut by the route's death (reset) is False, not an error: in-flight streams through the
    route that died end with it (new ones go through the next route)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = b""
            while b := s.recv(1 << 16):
                got += b
            return got == data
    except OSError:
        return False


class Traffic:
    """New connections through a use, one after another, until stopped: how many came back whole."""

    def __init__(self, port):
        self.port, self.ok, self.failed, self.stop = port, 0, 0, False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        data = os.urandom(32 << 10)
        while not self.stop:
            if echo_once(self.port, data):
                self.ok += 1
            else:
                self.failed += 1
                time.sleep(0.01)  # not a wait for anything: the use may be closed for a moment, do not spin

    def close(self):
        self.stop = True
        self.t.join(120)


def through(port):
    """A probe: a connection that hangs (its link went to a route that stopped answering) counts as
    not yet after 5 s, so the time measured is the failover's, not the probe's patience."""
    return echo_once(port, b"after failover", timeout=5)


def test_kill9_of_the_first_route_under_traffic_moves_every_vnet_to_the_second(relay, echo):
    routes = TwoRoutes(relay)
    order = [routes.addr("A"), routes.addr("B")]
    use_port = harness.free_port()
    relay.start_vnet("home", config=routes.vnet("home", order, serves=[{"name": "echo", "id": 650, "port": echo.port}]))
    relay.start_vnet("office", config=routes.vnet("office", order, uses=[{"name": "echo", "id": 650, "port": use_port}]))
    relay.wait_use("office", "echo")
    for v in ("home", "office"):
        shown = relay.ctl_json(v, "show", "vnet")
        assert shown["route"] == routes.addr("A") and shown["routes"] == order and shown["route_index"] == 0
    assert "route 127.0.0.1:%d (1 of %s)" % (routes.a, ", ".join(order)) in relay.ctl("home", "show", "vnet").stdout
    assert serves_on(routes.status("A")) == [("home", 650)]
    assert routes.status("B")["vnets"] == []

    traffic = Traffic(use_port)
    wait_for(lambda: traffic.ok >= 3, 60, "traffic through A")
    t0 = time.monotonic()
    relay.kill9("route")
    wait_for(lambda: through(use_port), FAILOVER_CAP_S, "a new connection through B")
    took = time.monotonic() - t0
    print(f"failover: first new connection through the second route {took:.2f} s after kill -9 of the first")
    before = traffic.ok
    wait_for(lambda: traffic.ok >= before + 3, 60, "traffic through B")
    traffic.close()
    for v in ("home", "office"):
        shown = relay.ctl_json(v, "show", "vnet")
        assert shown["connected"] and shown["route"] == routes.addr("B") and shown["route_index"] == 1
    # Nothing registered twice: one session per vnet, each serve once.
    st = routes.status("B")
    assert sorted(v["name"] for v in st["vnets"]) == ["home", "office"]
    assert serves_on(st) == [("home", 650)]

    # A comes back empty and stays so: the vnets keep their sessions to B (no flapping back).
    routes.start("A")
    assert routes.status("A")["vnets"] == []
    for _ in range(3):
        assert through(use_port)
        relay.ctl("office", "ping")
    assert routes.status("A")["vnets"] == []
    assert serves_on(routes.status("B")) == [("home", 650)]
    assert "moving to 127.0.0.1:%d" % routes.b in relay.log("home")


def test_a_silent_first_route_is_left_when_the_heartbeat_times_out(echo):
    """A route that stops answering without closing anything (SIGSTOP: its sockets stay open, the
    kernel still acknowledges) is noticed by the vnets' heartbeat only; then they move as on a death.
    Time scale 0.2: 15 s of silence is 3 s here."""
    relay = Relay(scale=0.2)
    try:
        routes = TwoRoutes(relay)
        order = [routes.addr("A"), routes.addr("B")]
        use_port = harness.free_port()
        relay.start_vnet("home", config=routes.vnet("home", order, serves=[{"name": "echo", "id": 653, "port": echo.port}]))
        relay.start_vnet("office", config=routes.vnet("office", order, uses=[{"name": "echo", "id": 653, "port": use_port}]))
        relay.wait_use("office", "echo")
        assert through(use_port)
        # A connection open through A when it goes silent: it must end when the vnets leave A (the
        # route ends a dropped session's links too), not hang while A says nothing.
        held = socket.create_connection(("127.0.0.1", use_port), timeout=FAILOVER_CAP_S)
        held.sendall(b"ping")
        assert held.recv(4) == b"ping"
        a = relay.procs["route"]
        t0 = time.monotonic()
        a.send_signal(signal.SIGSTOP)
        try:
            try:
                assert held.recv(4) == b"", "a connection through a silent route delivered data"
            except ConnectionResetError:
                pass
            finally:
                held.close()
            print(f"failover: the connection open through the silent route ended {time.monotonic() - t0:.2f} s after")
            # Wait on the vnets, not on a probe connection: one sent while A is silent hangs on its link.
            wait_for(lambda: all(relay.ctl_json(v, "show", "vnet")["route"] == routes.addr("B") for v in ("home", "office")),
                     FAILOVER_CAP_S, "both vnets on B")
            moved = time.monotonic() - t0
            relay.wait_use("office", "echo", timeout=FAILOVER_CAP_S)
            assert through(use_port)
            print(f"failover: both vnets on the second route {moved:.2f} s after the first went silent "
                  f"(heartbeat timeout 15 s scaled to 3 s, checked every 1 s); a new connection through it "
                  f"{time.monotonic() - t0:.2f} s after")
            assert "route silent" in relay.log("home") and "route silent" in relay.log("office")
        finally:
            a.send_signal(signal.SIGCONT)
        # A, awake, finds the vnets' connections closed and lets them go; nothing is held twice.
        wait_for(lambda: routes.status("A")["vnets"] == [], 40, "A lets the vnets go")
        assert serves_on(routes.status("B")) == [("home", 653)]
        assert sorted(v["name"] for v in routes.status("B")["vnets"]) == ["home", "office"]
    finally:
        print(relay.all_logs())
        relay.close()


def test_a_dead_first_address_starts_on_the_second(relay, echo):
    routes = TwoRoutes(relay)
    dead = harness.free_port()  # nothing listens there
    order = [f"127.0.0.1:{dead}", routes.addr("B")]
    token = os.path.join(relay.dir, "token")
    with open(token, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(token, 0o600)
    # The flags' form: --route repeated, in failover order.
    relay.spawn("home", [VNET, "serve", "--route", order[0], "--route", order[1], "--token-file", token,
                         "--fingerprint", relay.fingerprint, "--group", "g", "--name", "home", "--port",
                         str(echo.port), "--id", "651"])
    use_port = harness.free_port()
    relay.start_vnet("office", config=routes.vnet("office", order, uses=[{"name": "echo", "id": 651, "port": use_port}]))
    relay.wait_use("office", "echo", timeout=40)
    assert roundtrip(use_port, b"second")[1] == 6
    for v in ("home", "office"):
        shown = relay.ctl_json(v, "show", "vnet")
        assert shown["route"] == routes.addr("B") and shown["route_index"] == 1 and shown["routes"] == order
    assert serves_on(routes.status("B")) == [("home", 651)]


def test_reload_moves_only_when_the_current_route_left_the_list(relay):
    routes = TwoRoutes(relay)
    path = routes.vnet("home", [routes.addr("A"), routes.addr("B")], serves=[{"name": "s", "id": 652, "port": 9}])
    relay.start_vnet("home", config=path)
    relay.wait_serve("home", "s")
    first = relay.ctl_json("home", "show", "vnet")["vnet_id"]

    def rewrite(routes_list):
        with open(path) as f:
            text = f.read()
        start = text.index("address = ")
        end = text.index("\n", start)
        with open(path, "w") as f:
            f.write(text[:start] + "address = [" + ", ".join(f'"{r}"' for r in routes_list) + "]" + text[end:])

    # Reordered: A is still listed, the session stays on it (same vnet id), now shown as 2 of 2.
    rewrite([routes.addr("B"), routes.addr("A")])
    out = relay.ctl("home", "reload").stdout
    assert "routes " in out and "reconnecting" not in out, out
    shown = relay.ctl_json("home", "show", "vnet")
    assert shown["connected"] and shown["vnet_id"] == first and shown["route"] == routes.addr("A")
    assert shown["route_index"] == 1
    # A left the list: the vnet moves to B and registers there; A lets it go.
    rewrite([routes.addr("B")])
    assert "reconnecting" in relay.ctl("home", "reload").stdout
    wait_for(lambda: serves_on(routes.status("B")) == [("home", 652)], 40, "home on B")
    wait_for(lambda: routes.status("A")["vnets"] == [], 40, "home gone from A")
    assert relay.ctl_json("home", "show", "vnet")["route"] == routes.addr("B")


@pytest.mark.parametrize("address,why", [
    ("[]", "at least one route"),
    ('["127.0.0.1:7749", "127.0.0.1:7749"]', "listed twice"),
    ('["127.0.0.1:7749", "nonsense"]', "'nonsense'"),
    ('["127.0.0.1:7749", 7750]', "expected only strings"),
    ('["127.0.0.1:0"]', "'127.0.0.1:0'"),
    ("7749", "expected a string"),
])
def test_bad_route_lists_are_config_errors(relay, address, why):
    path = os.path.join(relay.dir, "bad.toml")
    with open(path, "w") as f:
        f.write(f'[route]\naddress = {address}\ntoken = "t"\ntls = false\n\n[vnet]\nname = "bad"\n')
    for cmd in ([VNET, "--check-config", "-c", path], [VNET, "-c", path]):
        r = subprocess.run(cmd, capture_output=True, text=True, env=relay.env(), timeout=30)
        assert r.returncode == 78, (cmd, r.returncode, r.stderr)
        assert why in r.stderr and "bad.toml:2:" in r.stderr, r.stderr


def test_repeated_route_flag_is_checked_like_the_list(relay):
    token = os.path.join(relay.dir, "token")
    with open(token, "w") as f:
        f.write("t\n")
    os.chmod(token, 0o600)
    r = subprocess.run([VNET, "serve", "--route", "127.0.0.1:7749", "--route", "127.0.0.1:7749", "--token-file", token,
                        "--fingerprint", "sha256:" + "00" * 32, "--port", "9", "--check-config"],
                       capture_output=True, text=True, env=relay.env(), timeout=30)
    assert r.returncode == 64 and "listed twice" in r.stderr, r.stderr
