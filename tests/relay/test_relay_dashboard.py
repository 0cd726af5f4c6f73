"""tn-route's per-vnet and per-serve traffic (bytes each way, links, errors) end to end: known byte
counts through a serve/use pair and through an HTTP vhost show up exactly in `status --json`, the text
status, /api/status, /metrics and the dashboard page; hostile names are escaped in every one of them;
and Debian's headless Chromium renders the page with its basic-auth credentials, the numbers on it
match /api/status, and its screenshot is kept in the test's output."""
import hashlib
import html.parser
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from relay_env import Relay, EchoHashServer, Web, TOKEN, ROUTE, roundtrip, wait_for, toml_str  # noqa: E402
from relay_env import http_get as get  # noqa: E402
from test_relay_https import alert, client_hello  # noqa: E402
import harness  # noqa: E402

USER, PASSWORD = "ops", "dash-secret"
CREDS = f"{USER}:{PASSWORD}"
HOSTILE_VNET = 'ev"il<script>alert(1)</script>\nx\\y'
HOSTILE_SERVE = "<img src=x onerror=alert(2)>"
HOSTILE_GROUP = 'g"<b>\n'


def parse_metrics(text):
    """Prometheus text: {(name, ((label, value), ...)): number}, label values unescaped. Every sample
    line must parse (an unescaped quote or newline in a label breaks it) and have HELP and TYPE."""
    typed, samples = set(), {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("# HELP "):
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+]+)', line)
        assert m, f"not a sample line: {line!r}"
        assert m.group(1) in typed, line
        labels = []
        rest = m.group(2) or ""
        while rest:
            lm = re.match(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)",?', rest)
            assert lm, f"bad labels: {line!r}"
            value = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1), lm.group(2))
            labels.append((lm.group(1), value))
            rest = rest[lm.end():]
        samples[(m.group(1), tuple(labels))] = float(m.group(3))
    return samples


def serve_metrics(samples, group, vnet, serve):
    key = (("group", group), ("vnet", vnet), ("serve", str(serve)))
    return {k: samples[(f"tn_route_serve_{m}", key)] for k, m in (
        ("bytes_in", "bytes_in_total"), ("bytes_out", "bytes_out_total"), ("links", "links_total"),
        ("open", "links_open"), ("errors", "link_errors_total"))}


def vnet_metrics(samples, group, vnet):
    key = (("group", group), ("vnet", vnet))
    return {k: samples[(f"tn_route_vnet_{m}", key)] for k, m in (
        ("bytes_in", "bytes_in_total"), ("bytes_out", "bytes_out_total"), ("links", "links_total"),
        ("open", "links_open"), ("errors", "link_errors_total"))}


def by_name(st):
    """status JSON -> {vnet name: (vnet traffic, {serve id: serve traffic})}."""
    return {v["name"]: (v["traffic"], {s["id"]: s["traffic"] for s in v["serves"]}) for v in st["vnets"]}


def exchange(port, data):
    """Sends `data` to 127.0.0.1:port, half-closes, reads to EOF; returns what came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while b := s.recv(65536):
            out += b
        return out


def start_hostile(relay, group, port):
    """A third vnet with a hostile name and a hostile serve name (TOML lets a config say anything)."""
    cfg = relay.vnet_config("evil", group=group, serves=[{"name": HOSTILE_SERVE, "id": 710, "port": port}])
    with open(cfg) as f:
        text = f.read().replace('name = "evil"', f"name = {toml_str(HOSTILE_VNET)}", 1)
    with open(cfg, "w") as f:
        f.write(text)
    relay.start_vnet("evil", config=cfg)
    wait_for(lambda: HOSTILE_VNET in by_name(relay.status()), what="hostile vnet up")


def held_open(port, n, counted):
    """Sends n bytes to 127.0.0.1:port and waits, the connection still open, until counted() is true
    (the route counts an open link's bytes as they pass); then half-closes and returns the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"z" * n)
        wait_for(counted, what=f"{n} bytes counted on an open link")
        s.shutdown(socket.SHUT_WR)
        out = b""
        while b := s.recv(65536):
            out += b
        return out


def start_world(relay, webs, group="g"):
    """A route with a dashboard and HTTP and HTTPS vhosts; vnet `home` serves a digest server (700, and
    by SNI as 703: the route relays TLS unopened, so any TCP server does), web A with a custom domain
    (701) and web B (702), and the digest server on a remote_port (704); vnet `office` uses 700.
    Returns (dashboard, vhost, TLS vhost, use, remote) ports."""
    dport, hport, tport, rport = harness.free_port(), harness.free_port(), harness.free_port(), harness.free_port()
    relay.route_extra = (f'\n[http]\nlisten = "127.0.0.1:{hport}"\nlisten_tls = "127.0.0.1:{tport}"\n'
                         f'[dashboard]\nlisten = "127.0.0.1:{dport}"\nuser = "{USER}"\npassword = "{PASSWORD}"\n')
    relay.start_route()
    harness.wait_port(dport)
    harness.wait_port(hport)
    a, b, digest = webs
    relay.start_vnet("home", group=group, serves=[
        {"name": "digest", "id": 700, "port": digest.port},
        {"name": "web", "id": 701, "port": a.port, "custom_domains": ["a.example.test"]},
        {"name": "down", "id": 702, "port": b.port, "custom_domains": ["b.example.test"]},
        {"name": "tls", "id": 703, "port": digest.port, "custom_domains": ["s.example.test"]},
        {"name": "public", "id": 704, "port": digest.port, "remote_port": rport}])
    use_port = harness.free_port()
    relay.start_vnet("office", group=group, uses=[{"name": "digest", "id": 700, "port": use_port}])
    relay.wait_serve("home", "web")
    relay.wait_serve("home", "down")
    relay.wait_serve("home", "tls")
    relay.wait_serve("home", "public")
    relay.wait_use("office", "digest")
    return dport, hport, tport, use_port, rport


@pytest.fixture
def webs():
    a, b, digest = Web("A"), Web("B"), EchoHashServer(digest=True)
    yield a, b, digest
    a.close()
    b.close()
    digest.close()


@pytest.mark.parametrize("tls", [True, False])
def test_per_serve_counters_match_the_bytes_sent(webs, tls):
    relay = Relay(tls=tls)
    try:
        dport, hport, tport, use_port, rport = start_world(relay, webs)

        def serve_now(sid):
            return by_name(relay.status())["home"][1][sid]
        # Open links count as their bytes pass: through the pair and through the remote_port.
        zs = {n: hashlib.sha256(b"z" * n).hexdigest().encode() for n in (3000, 7000)}
        for sid, port, n in ((700, use_port, 3000), (704, rport, 7000)):
            want = {"bytes_in": n, "bytes_out": 0, "links": 1, "open": 1, "errors": 0}
            assert held_open(port, n, lambda: serve_now(sid) == want) == zs[n]
        # Through the serve/use pair: 3 more connections of known sizes; each gets the 64-byte hex digest.
        sizes = [3000, 1, 100000, 1 << 20]
        for n in sizes[1:]:
            data = os.urandom(n)
            assert exchange(use_port, data) == hashlib.sha256(data).hexdigest().encode()
        # Through the vhost: two requests on one connection; the route counts what the client sent
        # and what came back, byte for byte.
        req = (b"GET /one HTTP/1.1\r\nHost: a.example.test\r\n\r\n"
               b"GET /two HTTP/1.1\r\nHost: a.example.test\r\nConnection: close\r\n\r\n")
        answer = exchange(hport, req)
        assert answer.count(b"A /") == 2, answer
        # Through the HTTPS vhost: a ClientHello naming the serve's domain, then anything.
        hello = client_hello("s.example.test") + os.urandom(1000)
        assert exchange(tport, hello) == hashlib.sha256(hello).hexdigest().encode()
        # A serve whose local server is down: the route answers 502 itself, one error on that serve.
        webs[1].close()
        assert get(hport, "b.example.test")[0] == 502
        wait_for(lambda: relay.status()["links"]["active"] == 0, what="links closed")

        st = relay.status()
        home, office = by_name(st)["home"], by_name(st)["office"]
        use_in, use_out = sum(sizes), 64 * len(sizes)
        assert home[1][700] == {"bytes_in": use_in, "bytes_out": use_out, "links": 4, "open": 0, "errors": 0}
        assert home[1][701] == {"bytes_in": len(req), "bytes_out": len(answer), "links": 1, "open": 0, "errors": 0}
        assert home[1][702] == {"bytes_in": 0, "bytes_out": 0, "links": 0, "open": 0, "errors": 1}
        assert home[1][703] == {"bytes_in": len(hello), "bytes_out": 64, "links": 1, "open": 0, "errors": 0}
        assert home[1][704] == {"bytes_in": 7000, "bytes_out": 64, "links": 1, "open": 0, "errors": 0}
        assert home[0] == {"bytes_in": use_in + len(req) + len(hello) + 7000, "bytes_out": use_out + len(answer) + 128, "links": 7,
                           "open": 0, "errors": 1}
        assert st["tls_vhost"]["links"] == 1
        # The using vnet sees the pair from its side: what it sent went out, the digests came in.
        assert office[0] == {"bytes_in": use_out, "bytes_out": use_in, "links": 4, "open": 0, "errors": 0}
        assert office[1] == {}

        # /api/status is the same document; /metrics the same numbers, labelled.
        status, _, body = get(dport, "x", "/api/status", auth=CREDS)
        assert status == 200
        assert by_name(json.loads(body)) == by_name(st)
        status, _, body = get(dport, "x", "/metrics", auth=CREDS)
        m = parse_metrics(body.decode())
        for sid, t in home[1].items():
            assert serve_metrics(m, "g", "home", sid) == t, sid
        assert vnet_metrics(m, "g", "home") == home[0]
        assert vnet_metrics(m, "g", "office") == office[0]
        # The text status shows them too.
        text = subprocess.run([ROUTE, "status", "-c", os.path.join(relay.dir, "route.toml")], capture_output=True, text=True,
                              env=relay.env(), timeout=30).stdout
        assert f"in {use_in}  out {use_out}  links 4 (0 open)  errors 0" in text, text
        # The dashboard page: a row per vnet and serve with the same five numbers.
        page = Page.parse(get(dport, "x", "/", auth=CREDS)[2].decode())
        page.check_against(st)
    finally:
        print(relay.all_logs())
        relay.close()


class Page(html.parser.HTMLParser):
    """The dashboard's tables as a browser or a script reads them: rows tagged data-vnet="ID" or
    data-serve="VNET/ID", cells data-k="bytes_in" etc.; the TLS vhost table's cells; script tags."""

    def __init__(self):
        super().__init__()
        self.rows, self.tls, self.scripts, self.cells = {}, {}, 0, []
        self._row = self._key = self._table = None
        self._in_td = False

    @classmethod
    def parse(cls, text):
        p = cls()
        p.feed(text)
        p.close()
        return p

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        elif tag == "table":
            self._table = a.get("id")
        elif tag == "tr":
            self._row = ("vnet", a["data-vnet"]) if "data-vnet" in a else ("serve", a["data-serve"]) if "data-serve" in a else None
            if self._row:
                self.rows[self._row] = {}
        elif tag == "td":
            self._key = a.get("data-k")
            self._in_td = True
            self.cells.append("")

    def handle_data(self, data):
        if self._in_td:
            self.cells[-1] += data

    def handle_endtag(self, tag):
        if tag != "td" or not self._in_td:
            return
        self._in_td = False
        if self._key is not None:
            target = self.rows[self._row] if self._row else self.tls if self._table == "tls_vhost" else None
            assert target is not None, f"a counter cell outside a counted row: {self.cells[-1]!r}"
            target[self._key] = int(self.cells[-1])
        self._key = None

    def check_against(self, st):
        """Every vnet and serve row holds the numbers status JSON `st` has for it, and only those rows."""
        want = {}
        for v in st["vnets"]:
            want[("vnet", str(v["id"]))] = v["traffic"]
            for s in v["serves"]:
                want[("serve", f'{v["id"]}/{s["id"]}')] = s["traffic"]
        assert self.rows == want
        assert self.tls == {"links": st["tls_vhost"]["links"], **st["tls_vhost"]["refused"]}


def test_hostile_names_are_escaped_everywhere(webs):
    relay = Relay(groups=((HOSTILE_GROUP, TOKEN),))
    try:
        relay.claims = {HOSTILE_GROUP: Relay.CLAIMS}
        dport, _, _, use_port, _ = start_world(relay, webs, group=HOSTILE_GROUP)
        start_hostile(relay, HOSTILE_GROUP, webs[2].port)
        data = os.urandom(5000)
        assert exchange(use_port, data) == hashlib.sha256(data).hexdigest().encode()
        wait_for(lambda: HOSTILE_VNET in by_name(relay.status()), what="hostile vnet up")
        wait_for(lambda: relay.status()["links"]["active"] == 0, what="links closed")

        # JSON (status --json and /api/status): the names round-trip exactly.
        st = relay.status()
        assert {v["group"] for v in st["vnets"]} == {HOSTILE_GROUP}
        evil = next(v for v in st["vnets"] if v["name"] == HOSTILE_VNET)
        assert [s["name"] for s in evil["serves"]] == [HOSTILE_SERVE]
        status, _, body = get(dport, "x", "/api/status", auth=CREDS)
        assert by_name(json.loads(body)) == by_name(st)
        # Text status: one line per vnet, controls shown as escapes.
        text = subprocess.run([ROUTE, "status", "-c", os.path.join(relay.dir, "route.toml")], capture_output=True, text=True,
                              env=relay.env(), timeout=30).stdout
        line = next(ln for ln in text.splitlines() if "ev\"il" in ln)
        assert 'ev"il<script>alert(1)</script>\\nx\\y' in line and 'group g"<b>\\n' in line, text
        # /metrics: every line parses, and the labels unescape to the names.
        m = parse_metrics(get(dport, "x", "/metrics", auth=CREDS)[2].decode())
        assert vnet_metrics(m, HOSTILE_GROUP, "home")["bytes_in"] == 5000
        assert vnet_metrics(m, HOSTILE_GROUP, HOSTILE_VNET)["links"] == 0
        assert serve_metrics(m, HOSTILE_GROUP, HOSTILE_VNET, 710)["errors"] == 0
        assert m[("tn_route_vnets", (("group", HOSTILE_GROUP),))] == 3
        # The page: no markup from a name gets through; the names show as text.
        body = get(dport, "x", "/", auth=CREDS)[2].decode()
        assert "<script>" not in body and "<img" not in body and "<b>" not in body
        page = Page.parse(body)
        assert page.scripts == 0
        assert 'ev"il<script>alert(1)</script>\\nx\\y' in page.cells
        assert HOSTILE_SERVE in page.cells
        page.check_against(st)
    finally:
        print(relay.all_logs())
        relay.close()


def output_dir():
    """Where this test keeps its screenshot: the meson log dir when run by meson, else a temp dir."""
    build = os.environ.get("TN_BUILD_ROOT")
    base = os.path.join(build, "meson-logs") if build and os.path.isdir(os.path.join(build, "meson-logs")) else None
    path = os.path.join(base, "test_relay_dashboard") if base else tempfile.mkdtemp(prefix="tn-dashboard-")
    os.makedirs(path, exist_ok=True)
    return path


def chromium(profile, *args):
    """Headless Chromium as root needs --no-sandbox; its own profile dir, no first-run work."""
    cmd = [shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_dashboard_in_headless_chromium(webs):
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (scripts/install-deps.sh installs it)")
    relay = Relay()
    out = output_dir()
    print(f"screenshot and DOM in {out}")
    try:
        dport, hport, tport, use_port, _ = start_world(relay, webs)
        start_hostile(relay, "g", webs[2].port)  # its name must reach the browser as text, not markup
        assert exchange(tport, b"not TLS at all") == alert("decode_error")  # refused, counted: the page shows it
        for n in (1, 70000):
            data = os.urandom(n)
            assert exchange(use_port, data) == hashlib.sha256(data).hexdigest().encode()
        assert exchange(hport, b"GET / HTTP/1.1\r\nHost: a.example.test\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 200")
        wait_for(lambda: relay.status()["links"]["active"] == 0, what="links closed")
        url = f"http://{USER}:{PASSWORD}@127.0.0.1:{dport}/"
        profile = os.path.join(relay.dir, "chromium")
        r = chromium(profile, "--dump-dom", url)
        assert r.returncode == 0 and "<table" in r.stdout, r.stderr[-2000:]
        with open(os.path.join(out, "dashboard.html"), "w") as f:
            f.write(r.stdout)
        # Nothing moves between the page and this read: the links are closed and no client is left.
        status, _, body = get(dport, "x", "/api/status", auth=CREDS)
        st = json.loads(body)
        page = Page.parse(r.stdout)
        page.check_against(st)
        home = next(v["id"] for v in st["vnets"] if v["name"] == "home")
        assert page.rows[("serve", f"{home}/700")] == {"bytes_in": 70001, "bytes_out": 128, "links": 2, "open": 0, "errors": 0}
        assert page.tls["bad_hello"] == 1
        # What the browser built from the page: no element came from a name, the names are text.
        assert page.scripts == 0 and "<img" not in r.stdout and 'ev"il<script>alert(1)</script>\\nx\\y' in page.cells
        shot = os.path.join(out, "dashboard.png")
        if os.path.exists(shot):
            os.unlink(shot)
        r = chromium(profile, f"--screenshot={shot}", "--window-size=1400,900", url)
        assert r.returncode == 0 and os.path.getsize(shot) > 1000, r.stderr[-2000:]
        with open(shot, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        # Without credentials the browser gets the 401 and none of the numbers.
        r = chromium(profile + "-anon", "--dump-dom", f"http://127.0.0.1:{dport}/")
        assert "data-vnet" not in r.stdout
    finally:
        print(relay.all_logs())
        relay.close()
