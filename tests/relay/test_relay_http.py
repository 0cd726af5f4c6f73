"""tn-route's HTTP side end to end: vhosts routed by Host to serves' custom_domains, the dashboard
(page, /api/status, /metrics, basic auth), and SIGHUP bringing both up without a restart."""
import base64
import json
import os
import re
import socket
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from relay_env import Relay, EchoHashServer, Web, roundtrip, wait_for, ROUTE  # noqa: E402
from relay_env import http_get as get, http_raw as raw  # noqa: E402
import harness  # noqa: E402


def curl(*args):
    r = subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture
def webs():
    a, b = Web("A"), Web("B")
    yield a, b
    a.close()
    b.close()


def start_vhosts(relay, webs):
    hport = harness.free_port()
    relay.route_extra = f'\n[http]\nlisten = "127.0.0.1:{hport}"\n'
    relay.start_route()
    harness.wait_port(hport)
    a, b = webs
    relay.start_vnet("va", serves=[{"name": "web", "port": a.port, "custom_domains": ["a.example.test"]}])
    relay.start_vnet("vb", serves=[{"name": "web", "port": b.port, "custom_domains": ["*.B.example.test"]}])
    relay.wait_serve("va", "web")
    relay.wait_serve("vb", "web")
    return hport


@pytest.mark.parametrize("tls", [True, False])
def test_two_serves_behind_one_route_reached_by_host(webs, tls):
    relay = Relay(tls=tls)
    try:
        hport = start_vhosts(relay, webs)
        assert curl("-H", "Host: a.example.test", f"http://127.0.0.1:{hport}/x") == "A /x a.example.test"
        assert curl("--resolve", f"www.b.example.test:{hport}:127.0.0.1",
                    f"http://www.b.example.test:{hport}/y") == f"B /y www.b.example.test:{hport}"
        # Case and port do not matter; the wildcard takes deeper names; the apex is not covered.
        assert get(hport, "A.EXAMPLE.TEST:8080")[2] == b"A / A.EXAMPLE.TEST:8080"
        assert get(hport, "x.y.b.example.test")[2].startswith(b"B ")
        status, _, body = get(hport, "b.example.test")
        assert status == 404 and b"b.example.test" in body
        assert get(hport, "nobody.example.org")[0] == 404
        # Keep-alive: both requests of one connection go to the serve chosen by the first.
        two = b"GET /1 HTTP/1.1\r\nHost: a.example.test\r\n\r\nGET /2 HTTP/1.1\r\nHost: x.b.example.test\r\nConnection: close\r\n\r\n"
        _, _, body = raw(hport, two)
        assert body.count(b"A /") == 2 and b"B /" not in body
        st = relay.status()
        assert st["http"] == f"127.0.0.1:{hport}"
        assert sorted(d for v in st["vnets"] for s in v["serves"] for d in s["custom_domains"]) == ["*.b.example.test", "a.example.test"]
        assert st["links"]["vhost"] >= 5
    finally:
        print(relay.all_logs())
        relay.close()


def test_malformed_oversized_conflicting_and_offline(webs):
    relay = Relay()
    try:
        hport = start_vhosts(relay, webs)
        assert raw(hport, b"GET / HTTP/1.1\r\n\r\n")[0] == 400          # no Host
        assert raw(hport, b"NOT HTTP AT ALL\r\n\r\n")[0] == 400
        assert raw(hport, b"GET / HTTP/1.1\r\nHost: a.example.test\r\nX: " + b"x" * 20000 + b"\r\n\r\n")[0] == 431
        assert "431" in relay.log("route") or "over 16384 bytes" in relay.log("route")
        # A third vnet asking for a domain that is taken is refused with a clear message.
        relay.start_vnet("vc", serves=[{"name": "web", "port": webs[0].port, "custom_domains": ["a.example.test"]}])

        def refused():
            for s in relay.ctl_json("vc", "show", "serve"):
                if "already routed" in s["state"]:
                    return s
            return None
        wait_for(refused, what="conflicting domain refused")
        assert "custom domain 'a.example.test' is already routed to another serve" in relay.log("vc")
        # The local HTTP server of a registered serve is down: 502 from the route.
        webs[0].close()
        status, _, body = get(hport, "a.example.test")
        assert status == 502 and b"serve" in body
        # The serving vnet drops: its domains go with it (404), and the other serve still works.
        relay.kill9("vb")
        wait_for(lambda: get(hport, "w.b.example.test")[0] == 404, what="domains of a dropped vnet freed")
    finally:
        print(relay.all_logs())
        relay.close()


def parse_metrics(text):
    """Prometheus text format, line by line: every sample belongs to a declared TYPE with HELP."""
    types, helps, samples = {}, set(), {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in ("counter", "gauge"), line
            types[name] = kind
        else:
            m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+]+)', line)
            assert m, f"not a sample line: {line!r}"
            assert m.group(1) in types and m.group(1) in helps, f"sample without TYPE/HELP: {line!r}"
            if types[m.group(1)] == "counter":
                assert m.group(1).endswith("_total"), line
            samples[m.group(1) + (m.group(2) or "")] = float(m.group(4))
    return samples


def test_dashboard_status_metrics_and_auth():
    relay = Relay()
    echo = EchoHashServer()
    dport = harness.free_port()
    relay.route_extra = f'\n[dashboard]\nlisten = "127.0.0.1:{dport}"\nuser = "ops"\npassword = "dash-secret"\n'
    try:
        relay.start_route()
        harness.wait_port(dport)
        relay.start_vnet("home", serves=[{"name": "echo", "id": 700, "port": echo.port}])
        use_port = harness.free_port()
        relay.start_vnet("office", uses=[{"name": "echo", "id": 700, "port": use_port}])
        relay.wait_use("office", "echo")
        payload = os.urandom(300000)
        assert roundtrip(use_port, payload)[1] == len(payload)
        wait_for(lambda: relay.status()["links"]["active"] == 0, what="link closed")

        # Without or with wrong credentials: 401 and a Basic challenge; nothing else leaks.
        for auth in (None, "ops:wrong", "admin:dash-secret"):
            status, head, body = get(dport, "x", "/api/status", auth=auth)
            assert status == 401, (auth, head)
            assert 'WWW-Authenticate: Basic realm="tn-route"' in head
            assert b"vnets" not in body
        creds = "ops:dash-secret"
        status, head, body = get(dport, "x", "/api/status", auth=creds)
        assert status == 200 and "application/json" in head
        st = json.loads(body)
        assert st == {**st, "dashboard": f"127.0.0.1:{dport}"}
        assert sorted(v["name"] for v in st["vnets"]) == ["home", "office"]
        assert st["links"]["total"] == 1
        # Echoed: the same bytes each way. With tls = true the route relays sealed records it cannot
        # open, so it counts their 20-byte headers and tags too (records carry up to 64 KiB).
        assert 2 * len(payload) <= st["bytes"] <= 2 * len(payload) * 1.05, st["bytes"]
        # Same data as `tn-route status --json` (up to the clock).
        cli = relay.status()
        for k in ("vnets", "links", "bytes", "remote_ports", "fingerprint"):
            if k == "vnets":
                assert [(v["id"], v["name"], v["serves"]) for v in cli[k]] == [(v["id"], v["name"], v["serves"]) for v in st[k]]
            else:
                assert cli[k] == st[k], k

        status, head, body = get(dport, "x", "/metrics", auth=creds)
        assert status == 200 and "text/plain; version=0.0.4" in head
        m = parse_metrics(body.decode())
        assert m['tn_route_vnets{group="g"}'] == 2
        assert m['tn_route_serves{group="g"}'] == 1
        assert m["tn_route_links_total"] == 1
        assert m["tn_route_relayed_bytes_total"] == st["bytes"]
        assert m["tn_route_links_active"] == 0
        assert m["tn_route_uptime_seconds"] >= 0

        status, head, body = get(dport, "x", "/", auth=creds)
        assert status == 200 and "text/html" in head
        assert b"<td>home</td>" in body and b"<td>office</td>" in body and str(st["bytes"]).encode() in body
        assert get(dport, "x", "/nope", auth=creds)[0] == 404
        assert raw(dport, b"POST /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
                   + base64.b64encode(creds.encode()) + b"\r\nContent-Length: 0\r\n\r\n")[0] == 405
        assert "dash-secret" not in relay.log("route")
    finally:
        print(relay.all_logs())
        echo.close()
        relay.close()


def test_dashboard_off_loopback_without_password_is_a_config_error(tmp_path):
    cfg = tmp_path / "route.toml"
    cfg.write_text('[dashboard]\nlisten = "0.0.0.0:7750"\n')
    r = subprocess.run([ROUTE, "--check-config", "-c", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 78
    assert "route.toml:2:" in r.stderr and "needs a password" in r.stderr
    cfg.write_text('[dashboard]\nlisten = "127.0.0.1:7750"\n')
    assert subprocess.run([ROUTE, "--check-config", "-c", str(cfg)], capture_output=True).returncode == 0


def test_sighup_brings_up_http_and_dashboard_without_a_restart(webs):
    relay = Relay()
    try:
        relay.start_route()
        relay.start_vnet("va", serves=[{"name": "web", "port": webs[0].port, "custom_domains": ["a.example.test"]}])
        relay.wait_serve("va", "web")
        hport, dport = harness.free_port(), harness.free_port()
        relay.route_extra = (f'\n[http]\nlisten = "127.0.0.1:{hport}"\n'
                             f'\n[dashboard]\nlisten = "127.0.0.1:{dport}"\npassword = "pw-12345"\n')
        relay.route_config()
        relay.procs["route"].send_signal(1)
        harness.wait_port(hport)
        harness.wait_port(dport)
        assert get(hport, "a.example.test")[2] == b"A / a.example.test"
        assert get(dport, "x", "/metrics")[0] == 401
        assert get(dport, "x", "/metrics", auth="admin:pw-12345")[0] == 200
        # Change the password and drop [http]: both apply live; the vnet session is untouched.
        relay.route_extra = f'\n[dashboard]\nlisten = "127.0.0.1:{dport}"\npassword = "pw-67890"\n'
        relay.route_config()
        relay.procs["route"].send_signal(1)
        wait_for(lambda: get(dport, "x", "/metrics", auth="admin:pw-67890")[0] == 200, what="new password")
        assert get(dport, "x", "/metrics", auth="admin:pw-12345")[0] == 401
        wait_for(lambda: not harness_port_open(hport), what="[http] closed")
        assert relay.procs["route"].poll() is None
        assert len(relay.status()["vnets"]) == 1
    finally:
        print(relay.all_logs())
        relay.close()


def harness_port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_vhost_examples_parse():
    examples = os.path.join(harness.SOURCE_ROOT, "examples")
    from relay_env import VNET
    for tool, name in ((ROUTE, "tn-route/vhosts.toml"), (VNET, "tn-vnet/web.toml")):
        r = subprocess.run([tool, "--check-config", "-c", os.path.join(examples, name)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_bad_custom_domain_is_a_config_error(tmp_path):
    from relay_env import VNET
    cfg = tmp_path / "v.toml"
    cfg.write_text('[route]\naddress = "127.0.0.1:1"\ntoken = "12345678"\ntls = false\n\n'
                   '[[serve]]\nname = "w"\nport = 80\ncustom_domains = ["ok.example.com", "bad_name.example.com"]\n')
    r = subprocess.run([VNET, "--check-config", "-c", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 78
    assert "v.toml:9:" in r.stderr and "bad_name.example.com" in r.stderr


def test_sighup_token_change_revokes_only_that_groups_sessions():
    echo = EchoHashServer()
    relay = Relay(groups=(("g", "token-one-123456"), ("h", "token-two-123456")))
    try:
        relay.start_route()
        relay.start_vnet("a", group="g", token="token-one-123456")
        relay.start_vnet("b", group="h", token="token-two-123456")
        relay.wait_connected("a")
        relay.wait_connected("b")
        ids = {v["name"]: v["id"] for v in relay.status()["vnets"]}
        relay.groups = (("g", "token-new-654321"), ("h", "token-two-123456"))
        relay.route_config()
        relay.procs["route"].send_signal(1)
        # a's token is no longer valid: its session is dropped and its reconnect refused (exit 77).
        assert relay.procs["a"].wait(30) == 77
        st = relay.status()
        assert [(v["name"], v["id"]) for v in st["vnets"]] == [("b", ids["b"])]  # b kept its session
        assert "token changed" in relay.log("route")
    finally:
        print(relay.all_logs())
        echo.close()
        relay.close()
