"""tn-route import on the frps examples frp users have and on vnet-v2's route config.ini
(tests/relay/import_fixtures): each converts, the result passes `tn-route --check-config`, and the
frp web example (frps + frpc, both imported) carries HTTP by Host through the real route and agent on
loopback (the fixtures' ports rewritten to free loopback ones: the only translation). Secrets go to
0600 files, never to stdout; broken input is exit 65 with the file and line."""
import os
import re
import stat
import sys
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from relay_env import (ROUTE, VNET, FIXTURES, EchoHashServer, Web, import_broken,  # noqa: E402
                       loopback, relay, run_tool as run, save, vnet_v2_pair_carries_tcp)  # noqa: F401,F811

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402

ROUTE_FIXTURES = ["frps-ssh.ini", "frps-web.ini", "frps-all.ini", "frps-all.toml", "vnet-v2-route.ini"]


@pytest.mark.parametrize("fixture", ROUTE_FIXTURES)
def test_each_example_imports_and_passes_check_config(relay, fixture):
    src = os.path.join(FIXTURES, fixture)
    tok, pw = os.path.join(relay.dir, "g.token"), os.path.join(relay.dir, "dash.pw")
    r = run(relay, ROUTE, "import", src, "--token-out", tok, "--password-out", pw, "--domain", "*.example.com")
    assert r.returncode == 0, r.stderr
    for f in (tok, pw):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    # The source's own token and dashboard password where it has them, else new random ones.
    own = {"frps-all.toml": ("frp-token-0123456789", "admin"), "frps-all.ini": (None, "admin")}.get(fixture, (None, None))
    for f, mine in zip((tok, pw), own):
        secret = open(f).read().strip()
        if mine:
            assert secret == mine
        else:
            assert re.fullmatch(r"[0-9a-f]{48}", secret) and secret not in r.stdout
    out = save(relay, fixture + ".toml", r.stdout)
    c = run(relay, ROUTE, "--check-config", "-c", out)
    assert c.returncode == 0, c.stderr + "\n" + r.stdout


def test_without_secrets_the_output_says_what_is_missing(relay):
    r = run(relay, ROUTE, "import", os.path.join(FIXTURES, "frps-all.ini"))
    assert r.returncode == 0, r.stderr
    assert "# token_file = " in r.stdout and "--password-out" in r.stdout
    assert "admin\n" not in r.stdout.split("user = 'admin'")[-1]  # dashboard_pwd = admin is not printed
    c = run(relay, ROUTE, "--check-config", "-c", save(relay, "bare.toml", r.stdout))
    # No token for the group, a dashboard on 0.0.0.0 without a password: both named.
    assert c.returncode == 78 and "token" in c.stderr and "password" in c.stderr, c.stderr


def start_imported_route(relay, src, port, tok, *args):
    """`tn-route import SRC --token-out TOK ARGS`, then the route it made, listening on `port`;
    returns its fingerprint."""
    r = run(relay, ROUTE, "import", src, "--token-out", tok, *args)
    assert r.returncode == 0, r.stderr
    route_cfg = save(relay, "tn-route.toml", r.stdout)
    fp = run(relay, ROUTE, "-q", "-c", route_cfg, "fingerprint").stdout.strip()
    harness.wait_port(port, proc=relay.spawn("route", [ROUTE, "-c", route_cfg]))
    relay.port = port
    return fp


def test_frp_web_example_serves_two_sites_by_host_through_the_imported_route(relay):
    route_port, http_port = harness.free_port(), harness.free_port()
    frps = open(os.path.join(FIXTURES, "frps-web.ini")).read().replace("[common]\n", "[common]\nbind_addr = 127.0.0.1\n")
    src = save(relay, "frps.ini", loopback(frps, bind_port=route_port, vhost_http_port=http_port))
    tok = os.path.join(relay.dir, "default.token")
    fp = start_imported_route(relay, src, route_port, tok, "--domain", "site1.example.com", "--domain", "site2.example.com")

    sites = [Web("site1"), Web("site2")]
    try:
        frpc = open(os.path.join(FIXTURES, "frpc-web.ini")).read()
        frpc = loopback(frpc, server_addr="127.0.0.1", server_port=route_port)
        frpc = frpc.replace("local_port = 80\n", f"local_port = {sites[0].port}\n")
        frpc = frpc.replace("local_port = 81\n", f"local_port = {sites[1].port}\n")
        r = run(relay, VNET, "import", save(relay, "frpc.ini", frpc), "--token-file", tok, "--fingerprint", fp)
        assert r.returncode == 0, r.stderr
        vnet_cfg = save(relay, "frpc.toml", r.stdout)
        assert run(relay, VNET, "--check-config", "-c", vnet_cfg).returncode == 0
        relay.start_vnet("frpc", config=vnet_cfg)
        relay.wait_serve("frpc", "web1")
        relay.wait_serve("frpc", "web2")
        for i, host in enumerate(["site1.example.com", "site2.example.com"]):
            req = urllib.request.Request(f"http://127.0.0.1:{http_port}/", headers={"Host": host})
            with urllib.request.urlopen(req, timeout=30) as resp:
                assert resp.read().decode() == f"site{i + 1} / {host}", relay.all_logs()  # the Host went through
    finally:
        for s in sites:
            s.close()


def test_vnet_v2_route_and_agents_all_imported_carry_tcp(relay):
    """A whole vnet-v2 setup switched by import alone: the route's config.ini (with --group and a new
    token), then host A's and office B's config.ini with that token: ssh-like TCP from B to A."""
    route_port, use_port = harness.free_port(), harness.free_port()
    src = save(relay, "route.ini", loopback(open(os.path.join(FIXTURES, "vnet-v2-route.ini")).read(), ip="127.0.0.1",
                                       port=route_port))
    tok = os.path.join(relay.dir, "default-ssh.token")
    fp = start_imported_route(relay, src, route_port, tok, "--group", "default-ssh")
    echo = EchoHashServer()
    try:
        cfgs = {}
        for fixture, name in (("vnet-v2-home-a.ini", "remote-ssh"), ("vnet-v2-office-b.ini", "local-ssh")):
            text = loopback(open(os.path.join(FIXTURES, fixture)).read(), ip="127.0.0.1", port=route_port)
            r = run(relay, VNET, "import", save(relay, fixture, text), "--token-file", tok, "--fingerprint", fp)
            assert r.returncode == 0, r.stderr
            out = r.stdout.replace("port = 22\n", f"port = {echo.port}\n").replace("port = 1122\n", f"port = {use_port}\n")
            cfgs[name] = save(relay, name + ".toml", out)
        vnet_v2_pair_carries_tcp(relay, cfgs["remote-ssh"], cfgs["local-ssh"], use_port)
    finally:
        echo.close()


@pytest.mark.parametrize("text,name,where", [
    ("[common]\nbind_port\n", "frps.ini", ":2: error:"),
    ("[common]\nbind_port = 1\n[common]\n", "frps.ini", ":3: error: duplicate section"),
    ("[common]\nallow_ports = 9-1\n", "frps.ini", ": error: allow_ports"),
    ("bindPort = [\n", "frps.toml", ":1:"),
    ("bindPort = 70000\n", "frps.toml", ":1:"),
    ("\x00\xff[[\n", "junk.ini", ":1: error:"),
    ("", "empty.ini", ": error:"),
])
def test_broken_input_is_65_with_file_and_line(relay, text, name, where):
    tok = os.path.join(relay.dir, "t")
    import_broken(relay, ROUTE, text, name, where, "--token-out", tok)
    assert not os.path.exists(tok)


@pytest.mark.parametrize("args,needle", [(["--domain", "*"], "--domain '*'"), (["--group", ""], "--group"),
                                         (["--token-out", "x", "--token-file", "y"], "exclude")])
def test_bad_flags_are_usage_errors(relay, args, needle):
    r = run(relay, ROUTE, "import", os.path.join(FIXTURES, "frps-ssh.ini"), *args)
    assert r.returncode == 64 and needle in r.stderr and r.stdout == "", r.stderr
