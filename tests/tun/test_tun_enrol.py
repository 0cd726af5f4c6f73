"""tn-tun server add-peer / remove-peer against a running server in network namespaces: the printed
client config connects as it is, the peer is in the config file (a restart keeps it), and removing
it ends its session at once."""
import fcntl
import os
import socket
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import tun_net  # noqa: E402

PORT = 51820


@pytest.fixture()
def net():
    tun_net.skip_unless_possible()
    t = tun_net.Topology(names=("srv", "c1"))
    try:
        t.keypair("server")
        t.server_conf = t.write("server.toml", f'# hand-written, kept as it is\n[server]\nlisten = "0.0.0.0:{PORT}"\n'
                                               'private_key_file = "server.key"\ntun = "tn0"\nsubnet = "10.99.0.0/24"\n')
        t.start("server", "srv", "server", "-c", t.server_conf)
        t.wait_for("the control socket", lambda: t.status())
        yield t
    finally:
        t.close()


def tool(t, *args, check=True):
    r = subprocess.run([t.tool, "server", "-c", t.server_conf, *args], capture_output=True, text=True,
                       env=t.env("server"), timeout=60)
    assert not check or r.returncode == 0, r.stderr
    return r


def names(status):
    return [p["name"] for p in status["peers"]]


def test_add_peer_connects_with_the_printed_config_and_remove_peer_ends_the_session(net):
    before = open(net.server_conf).read()
    keys = net.path("keys")
    os.mkdir(keys, 0o700)
    r = tool(net, "add-peer", "laptop", "--psk", "--endpoint", f"{net.addr['srv']}:{PORT}", "-o", keys)
    assert "reloaded" in r.stderr and "added=1" in r.stderr, r.stderr
    after = open(net.server_conf).read()
    assert after.startswith(before) and 'name = "laptop"' in after  # persisted, the rest untouched
    for f in ("laptop.key", "laptop.psk"):
        assert os.stat(os.path.join(keys, f)).st_mode & 0o777 == 0o600
    assert "laptop" in names(net.status())  # the running server took it without a restart
    conf = net.write("laptop.toml", r.stdout)
    net.start("laptop", "c1", "client", "-c", conf)
    net.wait_for("the laptop's address", lambda: net.tun_address("c1"))
    ping = net.exec("c1", "ping", "-c", "2", "-i", "0.2", "-W", "2", "10.99.0.1", check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr

    r = tool(net, "remove-peer", "laptop")
    assert "removed=1" in r.stderr, r.stderr
    assert "laptop" not in open(net.server_conf).read() and open(net.server_conf).read() == before
    st = net.status()
    assert "laptop" not in names(st)
    # Its session is gone at once: the server no longer takes its packets.
    ping = net.exec("c1", "ping", "-c", "2", "-i", "0.2", "-W", "1", "10.99.0.1", check=False)
    assert ping.returncode != 0, ping.stdout


def test_bad_requests_change_nothing(net):
    before = open(net.server_conf).read()
    r = tool(net, "add-peer", "x", check=False)  # listen is 0.0.0.0: clients need an address
    assert r.returncode == 78 and "--endpoint" in r.stderr, r.stderr
    r = tool(net, "add-peer", "../evil", "--endpoint", "192.0.2.1:1", check=False)
    assert r.returncode == 78 and "peer name" in r.stderr, r.stderr
    r = tool(net, "remove-peer", "nobody", check=False)
    assert r.returncode == 78 and "no [[peer]] named 'nobody'" in r.stderr, r.stderr
    assert open(net.server_conf).read() == before
    assert not [f for f in os.listdir(net.dir) if f.startswith(".server.toml")]  # no temp file left
    assert names(net.status()) == []


def test_two_edits_at_once_do_not_lose_one(net):
    # While another add-peer or remove-peer holds the edit lock, a second one changes nothing (75).
    before = open(net.server_conf).read()
    lock = os.path.join(net.env("server")["TN_STATE_DIR"], "tn-tun-tn0.enrol.lock")
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        r = tool(net, "add-peer", "late", "--endpoint", f"{net.addr['srv']}:{PORT}", "-o", net.dir, check=False)
    assert r.returncode == 75 and "another add-peer or remove-peer" in r.stderr, r.stderr
    assert open(net.server_conf).read() == before and not os.path.exists(net.path("late.key"))
    r = tool(net, "add-peer", "late", "--endpoint", f"{net.addr['srv']}:{PORT}", "-o", net.dir)
    assert "late" in names(net.status())


def ask(t, request):
    """One raw request on the server's control socket; returns (exit code line, body)."""
    path = os.path.join(t.env("server")["TN_STATE_DIR"], "tn-tun-tn0.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(20)
        s.connect(path)
        s.sendall(request.encode() + b"\n")
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    code, _, body = reply.decode().partition("\n")
    return int(code), body


def test_a_reload_the_running_server_refuses_exits_78(net):
    # The file is valid on its own, but the running server cannot apply it (its subnet changes only
    # at a restart, and a static address in the new one is not in the old one): the control reply
    # carries exit code 78, as tn-route's and tn-vnet's do, and add-peer passes it on.
    pub = net.keypair("fixed")
    with open(net.server_conf) as f:
        text = f.read().replace("10.99.0.0/24", "10.98.0.0/24")
    net.write("server.toml", text + f'\n[[peer]]\nname = "fixed"\npublic_key = "{pub}"\naddress = "10.98.0.5"\n')
    code, body = ask(net, "reload")
    assert code == 78 and body.startswith("reload failed, the running config stays: "), body
    assert "10.98.0.5" in body, body
    r = tool(net, "add-peer", "other", "--endpoint", f"{net.addr['srv']}:{PORT}", "-o", net.dir, check=False)
    assert r.returncode == 78, r.stderr
    assert "the running server says: reload failed, the running config stays: " in r.stderr, r.stderr
    assert names(net.status()) == []  # the running server kept its config
    assert ask(net, "json")[0] == 0
    assert ask(net, "two\x1fwords")[0] == 64
