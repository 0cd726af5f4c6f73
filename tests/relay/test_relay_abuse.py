"""tn-route under attack, with real processes: half-open floods under a low descriptor limit, control
sockets and state directories other users could reach, groups squatting each other's Host names and
public ports. Each test states the generous wait within which legitimate clients must be served."""
import os
import resource
import selectors
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from relay_env import Relay, Web, http_get, roundtrip, wait_for, wire_frame, wire_text, ROUTE, TOKEN, echo  # noqa: E402,F401,F811
import harness  # noqa: E402

SERVE_WAIT = 60  # seconds a legitimate vnet may take to register and proxy while under attack


class HalfOpenFlood:
    """Keeps `count` TCP connections open to 127.0.0.1:port from `sources` loopback addresses
    (127.0.<net>.x), each sending `payload` (maybe nothing) and then nothing more; each one the route
    closes is opened again, paced by a poll."""

    def __init__(self, port, count=300, sources=30, payload=b"", net=1):
        self.port, self.count, self.sources, self.payload, self.net = port, count, sources, payload, net
        self.sel = selectors.DefaultSelector()
        self.opened = 0
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def open_one(self, i):
        s = socket.socket()
        try:
            s.bind((f"127.0.{self.net}.{1 + i % self.sources}", 0))
            s.settimeout(5)
            s.connect(("127.0.0.1", self.port))
            if self.payload:
                s.sendall(self.payload)
            s.setblocking(False)
        except OSError:
            s.close()
            return
        self.sel.register(s, selectors.EVENT_READ, i)
        self.opened += 1

    def run(self):
        for i in range(self.count):
            if self.stop.is_set():
                return
            self.open_one(i)
        while not self.stop.is_set():
            closed = self.sel.select(timeout=0.05)
            for key, _ in closed:
                self.sel.unregister(key.fileobj)
                key.fileobj.close()
                if not self.stop.is_set():
                    self.open_one(key.data)
            if closed:
                self.stop.wait(0.05)  # the attacker's pace: at most a batch of reconnects per 50 ms

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.t.join(30)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.sel.close()


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def accept_lines(text):
    return sum(1 for line in text.splitlines() if "accept" in line)


@pytest.mark.parametrize("nofile", [64, 256])
def test_half_open_flood_under_a_low_fd_limit_keeps_serving(echo, nofile):
    """300 half-open connections from 30 addresses at a route limited to `nofile` descriptors (the
    old accept loop spun on EMFILE, logging without end, and new vnets timed out). At 64 descriptors
    (16 setups) the flood's silent connections used to push out the vnets' own: an address holding
    two setups (a control connection and a link) was the "biggest source", and a speaking newcomer
    found every silent slot younger than 250 ms, so vnets never got through. Legitimate vnets
    register and proxy within SERVE_WAIT, the route logs a bounded number of accept lines, and once
    the flood ends it holds no more descriptors than before."""
    relay = Relay()
    relay.route_preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    try:
        route = relay.start_route()
        wait_for(lambda: relay.status()["vnets"] == [], what="route status")
        baseline = fd_count(route.pid)
        use_port = harness.free_port()
        with HalfOpenFlood(relay.port) as flood:
            wait_for(lambda: flood.opened >= 300, SERVE_WAIT, "the flood's connections")
            relay.start_vnet("home", serves=[{"name": "echo", "id": 700, "port": echo.port}])
            relay.start_vnet("office", uses=[{"name": "echo", "id": 700, "port": use_port}])
            relay.wait_use("office", "echo", timeout=SERVE_WAIT)
            for i in range(5):
                assert roundtrip(use_port, b"through the flood %d" % i)[1] == len(b"through the flood %d" % i)
            assert route.poll() is None
        relay.stop("office")
        relay.stop("home")
        wait_for(lambda: relay.status()["vnets"] == [], SERVE_WAIT, "vnets gone")
        wait_for(lambda: fd_count(route.pid) <= baseline, SERVE_WAIT, f"route back to {baseline} descriptors")
        lines = accept_lines(relay.log("route"))
        assert lines <= 20, f"{lines} accept lines: the log is not rate-limited"
    finally:
        print(relay.all_logs()[-20000:])
        relay.close()


def test_stalled_handshakes_pause_the_listener_but_never_shut_it(echo):
    """At 64 descriptors the route works on at most 4 handshakes at once (its handshake window), an
    address counting for 1 of them. Four connections from one address that send the start of a TLS
    record and stall are all accepted, and only one counts. One such connection from each of four
    more addresses fills the window: the listener stops accepting (status --json setups.accept_paused),
    so what comes next waits in the kernel's listen queue instead of being accepted and evicted. A
    stalled handshake holds its place in the window for 2 s at most, so vnets that connect behind
    the stalls register and proxy."""
    relay = Relay()
    relay.route_preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    stall = b"\x16\x03\x01\x02\x00\x01"  # a 512-byte handshake record, of which 1 byte comes

    def setups_when(cond, what):
        return wait_for(lambda: (lambda st: st if cond(st) else None)(relay.status()["setups"]), SERVE_WAIT, what)

    try:
        route = relay.start_route()
        assert setups_when(lambda st: True, "route status")["window"] == 4
        use_port = harness.free_port()
        with HalfOpenFlood(relay.port, count=4, sources=1, payload=stall, net=2):
            st = setups_when(lambda st: st["open"] == 4, "one address's four stalls accepted")
            assert st["at_work"] <= 1 and not st["accept_paused"], st
            with HalfOpenFlood(relay.port, count=4, sources=4, payload=stall, net=3):
                st = setups_when(lambda st: st["accept_paused"], "the listener paused by a full window")
                assert st["at_work"] == 4, st
                relay.start_vnet("home", serves=[{"name": "echo", "id": 700, "port": echo.port}])
                relay.start_vnet("office", uses=[{"name": "echo", "id": 700, "port": use_port}])
                relay.wait_use("office", "echo", timeout=SERVE_WAIT)
                assert roundtrip(use_port, b"behind the stalls")[1] == len(b"behind the stalls")
                assert route.poll() is None
    finally:
        print(relay.all_logs()[-20000:])
        relay.close()


def test_state_dir_open_to_others_or_not_ours_is_refused_with_78(tmp_path):
    relay = Relay(claims={"g": ""})
    try:
        os.makedirs(relay.state, mode=0o700)
        cfg = relay.route_config()
        for mode in (0o755, 0o777, 0o701):
            os.chmod(relay.state, mode)
            r = subprocess.run([ROUTE, "-c", cfg], capture_output=True, text=True, env=relay.env(), timeout=20)
            assert r.returncode == 78, r.stderr
            assert "chmod 700" in r.stderr and relay.state in r.stderr
        os.chmod(relay.state, 0o700)
        if harness.is_root():
            os.chown(relay.state, 65534, 65534)
            r = subprocess.run([ROUTE, "-c", cfg], capture_output=True, text=True, env=relay.env(), timeout=20)
            assert r.returncode == 78, r.stderr
            assert "owned by uid 65534" in r.stderr
            os.chown(relay.state, 0, 0)
        assert not any(n.endswith(".sock") for n in os.listdir(relay.state))
    finally:
        relay.close()


@pytest.mark.skipif(not harness.is_root(), reason="needs root to act as another local user")
def test_control_socket_is_0600_under_umask_000_and_refuses_other_users():
    relay = Relay(claims={"g": ""})
    relay.route_preexec = lambda: os.umask(0)
    user = harness.TestUser(relay.dir)
    try:
        relay.start_route()
        sock = os.path.join(relay.state, f"tn-route-{relay.port}.sock")
        wait_for(lambda: os.path.exists(sock), what="control socket")
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(relay.state).st_mode) == 0o700
        assert relay.status()["vnets"] == []
        # Loosened by hand: the peer check still refuses the other user.
        os.chmod(relay.dir, 0o711)
        os.chmod(relay.state, 0o711)
        os.chmod(sock, 0o666)
        uid = user.uid
        # Refused means closed unanswered: the write may already fail, the read gets nothing.
        probe = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ns.settimeout(10)\n"
                 "try:\n s.sendall(b'status json\\n')\n print(repr(s.recv(65536)))\n"
                 "except (BrokenPipeError, ConnectionResetError):\n print(repr(b''))\n")
        r = subprocess.run([sys.executable, "-c", probe, sock], capture_output=True, text=True, timeout=30,
                           preexec_fn=lambda: os.setuid(uid))
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "b''", r.stdout
        assert "another user refused" in relay.log("route")
        assert relay.status()["vnets"] == []  # its owner still gets answers
    finally:
        print(relay.all_logs())
        relay.close()
        user.close()


RED = TOKEN
BLUE = TOKEN + "-blue"


def serve_state(relay, vnet, name):
    for s in relay.ctl_json(vnet, "show", "serve"):
        if s["name"] == name:
            return s["state"]
    return None


def wait_refused(relay, vnet, name, words):
    st = wait_for(lambda: (serve_state(relay, vnet, name) or "").startswith("refused") and serve_state(relay, vnet, name),
                  20, f"{vnet}'s {name} refused")
    for w in words:
        assert w in st, st
    return st


def test_groups_claim_only_their_listed_domains_and_ports(echo):
    p_red, p_blue = harness.free_port(), harness.free_port()
    hport = harness.free_port()
    relay = Relay(groups=(("red", RED), ("blue", BLUE)),
                  claims={"red": f'domains = ["*.red.example.test"]\nports = [{p_red}]\n',
                          "blue": f'domains = ["blue.example.test"]\nports = ["{p_blue}-{p_blue}"]\n'})
    relay.route_extra = f'\n[http]\nlisten = "127.0.0.1:{hport}"\n'
    try:
        relay.start_route()
        relay.start_vnet("redv", group="red", serves=[{"name": "web", "port": echo.port, "custom_domains": ["www.red.example.test"],
                                                       "remote_port": p_red}])
        relay.wait_serve("redv", "web")
        # Blue squats red's names, a wildcard over everything, and red's port: each refused.
        relay.start_vnet("bluev", group="blue", token=BLUE, serves=[
            {"name": "sq1", "port": echo.port, "custom_domains": ["x.red.example.test"]},
            {"name": "sq2", "port": echo.port, "custom_domains": ["*.example.test"]},
            {"name": "sq3", "port": echo.port, "remote_port": p_red},
            {"name": "sq4", "port": echo.port, "remote_port": p_blue + 1 if p_blue < 65535 else p_blue - 1},
            {"name": "ok", "port": echo.port, "custom_domains": ["blue.example.test"], "remote_port": p_blue}])
        relay.wait_serve("bluev", "ok")
        wait_refused(relay, "bluev", "sq1", ["x.red.example.test", "not in group 'blue' domains"])
        wait_refused(relay, "bluev", "sq2", ["*.example.test", "not in group 'blue' domains"])
        wait_refused(relay, "bluev", "sq3", [str(p_red), "not in group 'blue' ports"])
        wait_refused(relay, "bluev", "sq4", ["not in group 'blue' ports"])
        assert sorted(relay.status()["remote_ports"]) == sorted([p_red, p_blue])
    finally:
        print(relay.all_logs())
        relay.close()


def test_top_level_wildcards_are_config_errors(tmp_path):
    for bad in ('"*.com"', '"*"'):
        path = tmp_path / "route.toml"
        path.write_text(f'[route]\nlisten = "127.0.0.1:7749"\n[[group]]\nname = "g"\ntoken = "{TOKEN}"\ndomains = [{bad}]\n')
        r = subprocess.run([ROUTE, "--check-config", "-c", str(path)], capture_output=True, text=True)
        assert r.returncode == 78, r.stderr
        assert "route.toml:" in r.stderr and "domains" in r.stderr
    path.write_text(f'[route]\nlisten = "127.0.0.1:7749"\n[[group]]\nname = "g"\ntoken = "{TOKEN}"\nports = [0, "9-3"]\n')
    r = subprocess.run([ROUTE, "--check-config", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode == 78 and "not a port" in r.stderr and "ends before it starts" in r.stderr, r.stderr


def test_a_released_domain_and_port_stay_with_their_group_after_a_reconnect(echo):
    port = harness.free_port()
    shared = f'domains = ["*.shared.example.test"]\nports = [{port}]\n'
    relay = Relay(groups=(("red", RED), ("blue", BLUE)), claims={"red": shared, "blue": shared})
    try:
        relay.start_route()
        serve = {"name": "web", "id": 800, "port": echo.port, "custom_domains": ["app.shared.example.test"], "remote_port": port}
        relay.start_vnet("victim", group="red", serves=[serve])
        relay.wait_serve("victim", "web")
        relay.kill9("victim")
        wait_for(lambda: relay.status()["vnets"] == [], what="victim's session gone")
        relay.start_vnet("thief", group="blue", token=BLUE, serves=[dict(serve, name="take")])
        st = wait_refused(relay, "thief", "take", ["released by another group"])
        assert "app.shared.example.test" in st or str(port) in st
        relay.start_vnet("victim", group="red", serves=[serve])
        relay.wait_serve("victim", "web")
        assert relay.status()["remote_ports"] == [port]
        assert roundtrip(port, b"mine again")[1] == len(b"mine again")
    finally:
        print(relay.all_logs())
        relay.close()


def test_proxy_bind_sets_the_remote_port_address(echo):
    relay = Relay()
    relay.route_extra = ""
    port = harness.free_port()
    try:
        cfg_extra = 'proxy_bind = "127.0.0.2"\n'
        path = relay.route_config()
        with open(path) as f:
            text = f.read().replace("[route]\n", "[route]\n" + cfg_extra, 1)
        with open(path, "w") as f:
            f.write(text)
        if relay.tls:
            r = subprocess.run([ROUTE, "-q", "-c", path, "fingerprint"], capture_output=True, text=True, env=relay.env(), check=True)
            relay.fingerprint = r.stdout.strip()
        p = relay.spawn("route", [ROUTE, "-c", path])
        harness.wait_port(relay.port, proc=p)
        relay.start_vnet("home", serves=[{"name": "pub", "port": echo.port, "remote_port": port}])
        relay.wait_serve("home", "pub")
        s = socket.create_connection(("127.0.0.2", port), timeout=10)
        s.sendall(b"x")
        assert s.recv(1) == b"x"
        s.close()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        print(relay.all_logs())
        relay.close()


def test_tls_false_off_loopback_is_a_config_error(tmp_path):
    path = tmp_path / "route.toml"
    path.write_text(f'[route]\nlisten = "0.0.0.0:7749"\ntls = false\n[[group]]\nname = "g"\ntoken = "{TOKEN}"\n')
    r = subprocess.run([ROUTE, "--check-config", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode == 78, r.stderr
    assert "tls = false" in r.stderr and "loopback" in r.stderr
    path.write_text(f'[route]\nlisten = "127.0.0.1:7749"\ntls = false\n[[group]]\nname = "g"\ntoken = "{TOKEN}"\n')
    r = subprocess.run([ROUTE, "--check-config", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def wrong_auth(port, src):
    """One control connection from `src` that proves a made-up token; returns what the route sent."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(10)
    got = b""
    try:
        s.connect(("127.0.0.1", port))
        t = ctx.wrap_socket(s)
        auth = wire_text(b"g") + wire_text(b"guesser") + (7).to_bytes(8, "big") + os.urandom(32) + os.urandom(32)
        t.sendall(b"TNRL\x00\x05\x00\x00" + wire_frame(0x0002, auth))
        while True:
            b = t.recv(4096)
            if not b:
                break
            got += b
    except OSError:
        pass
    finally:
        s.close()
    return got


def test_wrong_token_storm_is_rate_limited_per_address_and_a_legit_vnet_registers(echo):
    """Threads guess tokens from 8 addresses without pause; within SERVE_WAIT a vnet with the right
    token registers and proxies, each guessing address gets refused unchecked, and the log stays short."""
    relay = Relay()
    try:
        relay.start_route()
        stop = threading.Event()
        answers = []

        def storm(src):
            while not stop.is_set():
                answers.append(wrong_auth(relay.port, src))

        threads = [threading.Thread(target=storm, args=(f"127.0.2.{i}",), daemon=True) for i in range(1, 9)]
        started = time.monotonic()
        for t in threads:
            t.start()
        try:
            wait_for(lambda: sum(b"too many failed" in a for a in answers) >= 8 or len(answers) > 400, SERVE_WAIT,
                     "guessers limited")
            use_port = harness.free_port()
            relay.start_vnet("home", serves=[{"name": "echo", "id": 700, "port": echo.port}])
            relay.start_vnet("office", uses=[{"name": "echo", "id": 700, "port": use_port}])
            relay.wait_use("office", "echo", timeout=SERVE_WAIT)
            assert roundtrip(use_port, b"right token")[1] == len(b"right token")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        elapsed = time.monotonic() - started
        # Each address got its burst of 10 checks and one more per 6 s, then refusals (unchecked, or
        # closed before TLS).
        checked = sum(b"authentication failed" in a for a in answers)
        assert checked <= 8 * (11 + elapsed / 6), f"{checked} of {len(answers)} guesses were checked in {elapsed:.0f} s"
        assert len(answers) > checked
        auth_lines = sum(1 for l in relay.log("route").splitlines() if "auth" in l.lower() and "WARN" in l)
        assert auth_lines < len(answers), "every guess got its own log line"
    finally:
        print(relay.all_logs()[-20000:])
        relay.close()


class Blackhole:
    """A listener that never accepts, its backlog filled: connects to it hang (a slow local service)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fill = []
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fill.append(c)

    def close(self):
        for c in self.fill:
            c.close()
        self.sock.close()


def two_group_vhosts(web, slow_port, extra=""):
    hport, dport = harness.free_port(), harness.free_port()
    relay = Relay(groups=(("red", RED), ("blue", BLUE)),
                  claims={"red": 'domains = ["*.red.example.test"]\n', "blue": 'domains = ["*.blue.example.test"]\n'})
    relay.route_extra = f'\n[http]\nlisten = "127.0.0.1:{hport}"\n\n[dashboard]\nlisten = "127.0.0.1:{dport}"\n' + extra
    relay.start_route()
    relay.start_vnet("redv", group="red", serves=[{"name": "slow", "port": slow_port, "custom_domains": ["slow.red.example.test"]}])
    relay.start_vnet("bluev", group="blue", token=BLUE,
                     serves=[{"name": "web", "id": 700, "port": web.port, "custom_domains": ["www.blue.example.test"]}])
    relay.wait_serve("redv", "slow")
    relay.wait_serve("bluev", "web")
    return relay, hport, dport


def test_slow_vhost_requests_of_one_group_do_not_starve_another():
    """270+ requests held pending on a serve whose local service never answers (the old route-wide
    table of 256 then refused every group): another group's vhost and its vnet<->vnet links still work."""
    web, hole = Web(), Blackhole()
    relay = None
    try:
        relay, hport, dport = two_group_vhosts(web, hole.port)
        use_port = harness.free_port()
        relay.start_vnet("blueuse", group="blue", token=BLUE, uses=[{"name": "web", "id": 700, "port": use_port}])
        relay.wait_use("blueuse", "web")
        head = b"GET / HTTP/1.1\r\nHost: slow.red.example.test\r\n\r\n"
        with HalfOpenFlood(hport, count=300, sources=30, payload=head, net=3) as flood:
            wait_for(lambda: flood.opened >= 300, SERVE_WAIT, "the slow requests")
            wait_for(lambda: relay.status()["links"]["pending"] >= 32, SERVE_WAIT, "slow requests pending")
            for _ in range(5):
                assert http_get(hport, "www.blue.example.test", timeout=30)[0] == 200
                s = socket.create_connection(("127.0.0.1", use_port), timeout=30)
                s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                assert s.recv(12) in (b"HTTP/1.0 200", b"HTTP/1.1 200")  # relay_env.Web speaks 1.1
                s.close()
            pending = relay.status()["links"]["pending"]
            assert pending <= 256 // 4 + 5, f"{pending} links pending for one serve"
        assert "too many pending links for serve" in relay.log("route")
    finally:
        if relay:
            print(relay.all_logs()[-20000:])
            relay.close()
        web.close()
        hole.close()


def test_half_sent_http_heads_lock_out_neither_vhosts_nor_the_dashboard():
    """1,030 clients that never finish their request head at the vhost port and 200 at the dashboard
    (the old route closed every new client beyond 1,024 heads): requests still get answers."""
    web, hole = Web(), Blackhole()
    relay = None
    try:
        relay, hport, dport = two_group_vhosts(web, hole.port)
        partial = b"GET / HTTP/1.1\r\nHo"
        with HalfOpenFlood(hport, count=1030, sources=30, payload=partial, net=4) as f1, \
                HalfOpenFlood(dport, count=200, sources=20, payload=partial, net=5) as f2:
            wait_for(lambda: f1.opened >= 1030 and f2.opened >= 200, SERVE_WAIT, "the half-sent heads")
            for _ in range(5):
                assert http_get(hport, "www.blue.example.test", timeout=30)[0] == 200
                assert http_get(dport, "127.0.0.1", "/api/status", timeout=30)[0] == 200
    finally:
        if relay:
            print(relay.all_logs()[-20000:])
            relay.close()
        web.close()
        hole.close()


def test_a_route_stopped_during_tls_handshakes_exits_cleanly():
    """Clients that opened TLS and sent a record header but no ClientHello keep the route's handshakes
    waiting; SIGTERM must still end it with 0. Under the sanitizer build this is the leak check: a
    waiting handshake step owned itself, so at every such exit it (and its connection) leaked."""
    relay = Relay()
    clients = []
    try:
        route = relay.start_route()
        wait_for(lambda: relay.status()["vnets"] == [], what="route status")
        baseline = fd_count(route.pid)
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", relay.port))
            s.sendall(b"\x16\x03\x01\x02\x00")  # a handshake record of 512 bytes, none of them sent
            clients.append(s)
        wait_for(lambda: fd_count(route.pid) >= baseline + 5, SERVE_WAIT, "the route holding the handshakes")
        route.send_signal(signal.SIGTERM)
        assert route.wait(timeout=SERVE_WAIT * 3) == 0, relay.log("route")
    finally:
        for s in clients:
            s.close()
        print(relay.all_logs()[-20000:])
        relay.close()
