"""tn-vnet import on the example configs vnet-v2 and frp users have (tests/relay/import_fixtures, copied
from their documentation): each converts, the result passes `tn-vnet --check-config`, and imported
configs carry TCP traffic through a real tn-route on loopback (the fixtures' addresses and ports
rewritten to loopback ones: the only translation). Broken input is exit 65 with the file and line."""
import os
import stat
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from relay_env import (VNET, TOKEN, FIXTURES, EchoHashServer, carries_a_mib, import_broken, loopback,  # noqa: E402
                       relay, run_tool, save, vnet_v2_pair_carries_tcp)  # noqa: F401,F811

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402

FP = "sha256:" + "ab" * 32
VNET_FIXTURES = ["vnet-v2-full.ini", "vnet-v2-home-a.ini", "vnet-v2-office-b.ini", "frpc-ssh.ini", "frpc-web.ini",
                 "frpc-all.ini", "frpc-all.toml"]


def token_file(relay, token=TOKEN):
    path = os.path.join(relay.dir, "group.token")
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, (token + "\n").encode())
        os.close(fd)
    return path


def imp(relay, src, *args):
    return run_tool(relay, VNET, "import", src, *args)


def check(relay, path):
    return run_tool(relay, VNET, "--check-config", "-c", path)


@pytest.mark.parametrize("fixture", VNET_FIXTURES)
def test_each_example_imports_and_passes_check_config(relay, fixture):
    src = os.path.join(FIXTURES, fixture)
    r = imp(relay, src, "--token-file", token_file(relay), "--fingerprint", FP)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    out = save(relay, fixture + ".toml", r.stdout)
    c = check(relay, out)
    assert c.returncode == 0, c.stderr + "\n" + r.stdout
    # Without token and fingerprint the result says how to get them, and check-config names both.
    r = imp(relay, src)
    assert r.returncode == 0 and "# token_file = " in r.stdout and "tn-route fingerprint" in r.stdout, r.stdout
    c = check(relay, save(relay, fixture + ".bare.toml", r.stdout))
    assert c.returncode == 78 and "fingerprint" in c.stderr and "token" in c.stderr, c.stderr


def test_token_out_writes_the_token_0600_and_never_prints_it(relay):
    src = os.path.join(FIXTURES, "frpc-all.toml")
    tok = os.path.join(relay.dir, "frp.token")
    r = imp(relay, src, "--token-out", tok, "--fingerprint", FP)
    assert r.returncode == 0, r.stderr
    assert "frp-token-0123456789" not in r.stdout + r.stderr
    assert stat.S_IMODE(os.stat(tok).st_mode) == 0o600
    assert open(tok).read() == "frp-token-0123456789\n"
    assert f"token_file = '{tok}'" in r.stdout
    assert "name = 'dns'\ntype = 'udp'" in r.stdout and "remote_port = 6053" in r.stdout
    assert check(relay, save(relay, "frpc.toml", r.stdout)).returncode == 0
    # Never over an existing file (74), and nothing printed then.
    r = imp(relay, src, "--token-out", tok)
    assert r.returncode == 74 and r.stdout == "" and "not overwritten" in r.stderr, r.stderr
    # A source without a token has nothing to write: a usage error.
    r = imp(relay, os.path.join(FIXTURES, "vnet-v2-home-a.ini"), "--token-out", os.path.join(relay.dir, "none"))
    assert r.returncode == 64 and r.stdout == "" and "no token" in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(relay.dir, "none"))


def test_a_token_file_others_can_read_is_refused(relay):
    tok = token_file(relay)
    os.chmod(tok, 0o644)
    r = imp(relay, os.path.join(FIXTURES, "vnet-v2-home-a.ini"), "--token-file", tok, "--fingerprint", FP)
    c = check(relay, save(relay, "a.toml", r.stdout))
    assert c.returncode == 78 and "chmod 600" in c.stderr, c.stderr


def imported(relay, fixture, name, **subs):
    src = save(relay, name + os.path.splitext(fixture)[1], loopback(open(os.path.join(FIXTURES, fixture)).read(), **subs))
    r = imp(relay, src, "--token-file", token_file(relay), "--fingerprint", relay.fingerprint)
    assert r.returncode == 0, r.stderr
    path = save(relay, name + ".toml", r.stdout)
    assert check(relay, path).returncode == 0
    return path


def test_vnet_v2_home_and_office_carry_tcp_through_a_route(relay):
    """The vnet-v2 scenario: host A serves ssh as serve 700, office host B uses it on port 1122."""
    relay.groups = (("default-ssh", TOKEN),)
    relay.start_route()
    echo = EchoHashServer()
    use_port = harness.free_port()
    try:
        a = imported(relay, "vnet-v2-home-a.ini", "home", ip="127.0.0.1", port=relay.port)
        a = save(relay, "home.toml", open(a).read().replace("port = 22\n", f"port = {echo.port}\n"))
        b = imported(relay, "vnet-v2-office-b.ini", "office", ip="127.0.0.1", port=relay.port)
        b = save(relay, "office.toml", open(b).read().replace("port = 1122\n", f"port = {use_port}\n"))
        vnet_v2_pair_carries_tcp(relay, a, b, use_port)
        serves = relay.status()["vnets"]
        assert any(s["id"] == 700 for v in serves for s in v.get("serves", [])), serves
    finally:
        echo.close()


def test_frpc_ssh_example_carries_tcp_on_its_remote_port(relay):
    """frp's ssh example: [ssh] remote_port becomes the route's public port for the serve."""
    relay.groups = (("default", TOKEN),)
    relay.start_route()
    echo = EchoHashServer()
    remote = harness.free_port()
    try:
        cfg = imported(relay, "frpc-ssh.ini", "frpc", server_addr="127.0.0.1", server_port=relay.port,
                       local_port=echo.port, remote_port=remote)
        relay.start_vnet("frpc", config=cfg)
        relay.wait_serve("frpc", "ssh")
        harness.wait_port(remote)
        carries_a_mib(relay, remote)
    finally:
        echo.close()


@pytest.mark.parametrize("text,name,where", [
    ("[route]\nip=127.0.0.1\nport\n", "config.ini", ":3: error:"),
    ("[route]\nip=1\n[route]\nport=2\n", "config.ini", ":3: error: duplicate section"),
    ("[common]\nserver_addr = x\n[ssh]\nlocal_port = 99999\n", "frpc.ini", ": error: [ssh] local_port = 99999"),
    ("serverAddr = \"x\"\n[[proxies]]\nname = 3\n", "frpc.toml", ":3:"),
    ("serverAddr = [\n", "frpc.toml", ":1:"),
    ("\x00\xff\xfe[[[\n", "junk.ini", ":1: error:"),
    ("", "empty.ini", ": error:"),
])
def test_broken_input_is_65_with_file_and_line(relay, text, name, where):
    import_broken(relay, VNET, text, name, where)


def test_a_missing_file_is_65_too(relay):
    r = imp(relay, os.path.join(relay.dir, "nope.ini"))
    assert r.returncode == 65 and "nope.ini" in r.stderr, r.stderr
