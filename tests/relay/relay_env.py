"""Starts real tn-route and tn-vnet processes on loopback for the relay tests: temp dir, free ports,
generated configs checked first, readiness polled through `status --json` / `ctl --json`, and every
process stopped by the PID we started."""
import base64
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402

ROUTE = harness.tool("tn-route")
VNET = harness.tool("tn-vnet")
TOKEN = "test-token-0123456789"


# The harness's fixtures: one wait_for and one echo server for every suite.
EchoHashServer = harness.EchoHashServer


def wait_for(pred, timeout=15.0, what="condition"):
    """harness.wait_for with the errors a starting tool gives meanwhile counted as "not yet"."""
    return harness.wait_for(pred, timeout, what, errors=(OSError, ValueError, subprocess.SubprocessError))


def wire_frame(mtype, payload):
    """One frame as doc/PROTOCOL.relay.md §3 lays it out, for tests that speak the wire by hand."""
    return mtype.to_bytes(2, "big") + b"\0\0" + len(payload).to_bytes(4, "big") + payload


def wire_text(b):
    """A u16-length-prefixed byte string, as frames carry names and messages."""
    return len(b).to_bytes(2, "big") + b


def toml_str(s):
    return json.dumps(s)


class Relay:
    """One test's world: a state dir, a route and any number of vnets."""

    # What every test group may claim unless a test says otherwise: any free port, the test domains.
    CLAIMS = 'ports = ["1024-65535"]\ndomains = ["*.example.test"]\n'

    def __init__(self, tls=True, scale=None, groups=(("g", TOKEN),), claims=None):
        self.dir = tempfile.mkdtemp(prefix="tn-relay-")
        self.state = os.path.join(self.dir, "state")
        self.tls = tls
        self.scale = scale
        self.groups = groups
        self.claims = claims if claims is not None else {}  # group name -> its TOML lines; else CLAIMS
        self.route_preexec = None  # run in the route's child before exec (resource limits, umask)
        self.procs = {}
        self.logs = {}
        self.port = None
        self.fingerprint = ""
        self.route_extra = ""  # more TOML for route.toml ([http], [dashboard])

    # ---- processes ----
    def env(self):
        env = dict(os.environ, TN_STATE_DIR=self.state)
        if self.scale:
            env["TN_RELAY_TIME_SCALE"] = str(self.scale)
        return env

    def spawn(self, name, cmd, preexec=None):
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL, env=self.env(),
                             preexec_fn=preexec)
        log.close()
        self.procs[name] = p
        return p

    def log(self, name):
        with open(os.path.join(self.dir, name + ".log"), errors="replace") as f:
            return f.read()

    def all_logs(self):
        return "\n".join(f"--- {n} ---\n{self.log(n)}" for n in self.procs)

    def stop(self, name):
        harness.stop_process(self.procs.get(name))

    def kill9(self, name):
        p = self.procs[name]
        p.send_signal(signal.SIGKILL)
        p.wait()

    def close(self):
        for name in list(self.procs):
            harness.stop_process(self.procs[name])
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- route ----
    def route_config(self, path=None):
        path = path or os.path.join(self.dir, "route.toml")
        if self.port is None:
            self.port = harness.free_port()
        text = f'[route]\nlisten = "127.0.0.1:{self.port}"\ntls = {str(self.tls).lower()}\n'
        for name, token in self.groups:
            text += f'\n[[group]]\nname = {toml_str(name)}\ntoken = {toml_str(token)}\n'
            text += self.claims.get(name, self.CLAIMS)
        text += self.route_extra
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)  # it holds the tokens (tn-route warns otherwise)
        return path

    def start_route(self):
        cfg = self.route_config()
        if self.tls:
            r = subprocess.run([ROUTE, "-q", "-c", cfg, "fingerprint"], capture_output=True, text=True, env=self.env(), check=True)
            self.fingerprint = r.stdout.strip()
        p = self.spawn("route", [ROUTE, "-c", cfg], preexec=self.route_preexec)
        harness.wait_port(self.port, proc=p)
        return p

    def status(self):
        r = subprocess.run([ROUTE, "status", "--json", "-c", os.path.join(self.dir, "route.toml")], capture_output=True,
                           text=True, env=self.env(), timeout=10)
        if r.returncode != 0:
            raise OSError(r.stderr)
        return json.loads(r.stdout)

    # ---- vnets ----
    def vnet_config(self, name, group="g", token=TOKEN, serves=(), uses=(), extra_vnet="", fingerprint=None, tls=None):
        tls = self.tls if tls is None else tls
        fp = self.fingerprint if fingerprint is None else fingerprint
        text = f'[route]\naddress = "127.0.0.1:{self.port}"\ntoken = {toml_str(token)}\ntls = {str(tls).lower()}\n'
        if tls:
            text += f'fingerprint = {toml_str(fp)}\n'
        text += f'\n[vnet]\nname = {toml_str(name)}\ngroup = {toml_str(group)}\n{extra_vnet}\n'
        for s in serves:
            text += "\n[[serve]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in s.items())
        for u in uses:
            text += "\n[[use]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in u.items())
        path = os.path.join(self.dir, name + ".toml")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([VNET, "--check-config", "-c", path], capture_output=True, text=True, env=self.env())
        assert r.returncode == 0, r.stderr
        return path

    def start_vnet(self, name, config=None, **kw):
        path = config or self.vnet_config(name, **kw)
        return self.spawn(name, [VNET, "-c", path])

    def socket_of(self, name):
        """The control socket of vnet `name`: $STATE/tn-vnet-NAME-KEY.sock (KEY: route, group and name)."""
        pat = re.compile(rf"tn-vnet-{re.escape(name)}-[0-9a-f]{{12}}\.sock")
        found = [f for f in os.listdir(self.state) if pat.fullmatch(f)] if os.path.isdir(self.state) else []
        if len(found) != 1:
            raise OSError(f"control socket of {name}: found {found}")
        return os.path.join(self.state, found[0])

    def ctl(self, name, *words, check=True):
        r = subprocess.run([VNET, "ctl", "--socket", self.socket_of(name), *words],
                           capture_output=True, text=True, env=self.env(), timeout=10)
        if check and r.returncode != 0:
            raise OSError(f"ctl {words}: {r.returncode} {r.stderr}")
        return r

    def ctl_json(self, name, *words):
        return json.loads(self.ctl(name, *words, "--json").stdout)

    def wait_connected(self, name, timeout=15):
        return wait_for(lambda: self.ctl_json(name, "show", "vnet")["connected"], timeout, f"{name} connected")

    def wait_use(self, name, use, state="attached", timeout=15):
        def check():
            for u in self.ctl_json(name, "show", "use"):
                if u["name"] == use and u["state"] == state:
                    return u
            return None
        return wait_for(check, timeout, f"use {use} of {name} {state}")

    def wait_serve(self, name, serve, timeout=15):
        def check():
            for s in self.ctl_json(name, "show", "serve"):
                if s["name"] == serve and s["registered"]:
                    return s
            return None
        return wait_for(check, timeout, f"serve {serve} of {name} registered")


def roundtrip(port, data, chunk=1 << 16):
    """Sends `data` through port (to an echo server), half-closes, returns sha256 of what came back."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    h = hashlib.sha256()
    got = [0]

    def reader():
        while True:
            b = s.recv(1 << 16)
            if not b:
                return
            h.update(b)
            got[0] += len(b)

    t = threading.Thread(target=reader)
    t.start()
    view = memoryview(data)
    for i in range(0, len(data), chunk):
        s.sendall(view[i:i + chunk])
    s.shutdown(socket.SHUT_WR)
    t.join(120)
    s.close()
    return h.hexdigest(), got[0]


class Web:
    """A tiny HTTP/1.1 server (keep-alive) on loopback that answers '<name> <path> <host>'; with an
    ssl.SSLContext, an HTTPS server (its own certificate: the route relays its TLS unopened)."""

    def __init__(self, name="ok", tls=None):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                body = f"{name} {self.path} {self.headers.get('Host')}".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.srv.socket = tls.wrap_socket(self.srv.socket, server_side=True)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def recv_all(sock):
    """Everything `sock` receives until the peer closes."""
    data = b""
    while True:
        b = sock.recv(65536)
        if not b:
            return data
        data += b


def http_raw(port, data, timeout=10, src=None):
    """Sends bytes to 127.0.0.1:port (from address `src`), reads to EOF; returns (status, head text,
    body). A reset ends the read; a connection that fails or times out before any answer is status 0."""
    s = socket.socket()
    out = b""
    try:
        if src:
            s.bind((src, 0))
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        s.sendall(data)
        while b := s.recv(65536):
            out += b
    except OSError:
        pass
    finally:
        s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return (int(m.group(1)) if m else 0), head.decode(errors="replace"), body


def http_get(port, host, path="/", auth=None, src=None, timeout=10):
    """GET `path` with Host `host` (and basic `auth` "user:password"): (status, head text, body)."""
    extra = f"Authorization: Basic {base64.b64encode(auth.encode()).decode()}\r\n" if auth else ""
    return http_raw(port, f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n".encode(), timeout, src)


# What the importer tests share (test_import_route.py, test_import_vnet.py).
FIXTURES = os.path.join(os.path.dirname(__file__), "import_fixtures")


def run_tool(relay, tool, *args):
    return subprocess.run([tool, *args], capture_output=True, text=True, env=relay.env(), timeout=30)


def save(relay, name, text):
    """Writes `text` to relay.dir/name, 0600 (configs that may name secrets); returns the path."""
    path = os.path.join(relay.dir, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path


def loopback(text, **subs):
    """The fixture with the first `key = value` line of each key replaced (the [route]/[common] one)."""
    for key, value in subs.items():
        text, n = re.subn(rf"(?m)^({re.escape(key)}\s*=\s*).*$", lambda m: m.group(1) + str(value), text, count=1)
        assert n, key
    return text


def import_broken(relay, tool, text, name, where, *args):
    """`tool import` of a file holding `text` (bytes as surrogates) fails with 65, prints nothing on
    stdout and names the file and line (`where` right after the path); returns the result."""
    src = os.path.join(relay.dir, name)
    with open(src, "w", errors="surrogateescape") as f:
        f.write(text)
    r = run_tool(relay, tool, "import", src, *args)
    assert r.returncode == 65, (r.returncode, r.stderr)
    assert r.stdout == ""
    assert src + where in r.stderr, r.stderr
    return r


def vnet_v2_pair_carries_tcp(relay, home_cfg, office_cfg, use_port):
    """vnet-v2's example pair: host A ("remote-ssh") serves ssh, office B ("local-ssh") uses it on
    use_port; both come up and 1 MiB goes through."""
    relay.start_vnet("remote-ssh", config=home_cfg)
    relay.start_vnet("local-ssh", config=office_cfg)
    relay.wait_serve("remote-ssh", "ssh")
    relay.wait_use("local-ssh", "ssh")
    carries_a_mib(relay, use_port)


def carries_a_mib(relay, port):
    """1 MiB of random bytes through 127.0.0.1:port comes back whole (an EchoHashServer behind it)."""
    data = os.urandom(1 << 20)
    assert roundtrip(port, data) == (hashlib.sha256(data).hexdigest(), len(data)), relay.all_logs()


# The fixtures most relay tests share (a test module takes them with `from relay_env import relay, echo`).
@pytest.fixture
def relay():
    """A Relay with nothing started; its processes' logs are printed (shown when the test fails)."""
    r = Relay()
    yield r
    print(r.all_logs())
    r.close()


@pytest.fixture
def echo():
    e = EchoHashServer()
    yield e
    e.close()
