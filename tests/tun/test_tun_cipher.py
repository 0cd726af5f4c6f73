"""tn-tun's cipher suites (PROTOCOL.tun.md §4, revision 5) end to end in network namespaces: a client
with the default `cipher = "auto"` gets AES-256-GCM from a default server on this AES-NI machine and
carries traffic (a TCP stream checked by hash); a client that never offers it (`chacha20-poly1305`,
on the wire exactly a revision 4 client) gets ChaCha20-Poly1305 from the same server; the two reach
each other through the server, which re-encrypts between the suites; a bad `cipher` is a config error,
and so is a `handshake_rate` out of range."""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import tun_net  # noqa: E402
from tun_net import peer  # noqa: E402

PORT = 51820


def aes_ni():
    flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "").split()
    return "aes" in flags and "pclmulqdq" in flags


def client_config(t, name, server_pub, cipher=None):
    return t.client_config(name, server_pub, PORT, f'cipher = "{cipher}"\n' if cipher else "")


@pytest.fixture(scope="module")
def net():
    tun_net.skip_unless_possible()
    if not aes_ni():
        pytest.skip("this CPU has no AES-NI: cipher = auto means ChaCha20-Poly1305 here")
    t = tun_net.Topology(names=("srv", "c1", "c2"))
    try:
        server_pub = t.keypair("server")
        keys = {n: t.keypair(n) for n in ("c1", "c2")}
        text = f'[server]\nlisten = "0.0.0.0:{PORT}"\nprivate_key_file = "server.key"\ntun = "tn0"\nsubnet = "10.99.0.0/24"\n'
        for n in ("c1", "c2"):
            text += f'\n[[peer]]\nname = "{n}"\npublic_key = "{keys[n]}"\n'
        conf = t.write("server.toml", text)
        t.start("server", "srv", "server", "-c", conf)
        t.wait_for("the control socket", lambda: t.status())
        t.start("c1", "c1", "client", "-c", client_config(t, "c1", server_pub))
        t.start("c2", "c2", "client", "-c", client_config(t, "c2", server_pub, "chacha20-poly1305"))
        yield t
    finally:
        t.close()


def test_auto_on_both_sides_negotiates_aes_and_carries_a_stream(net):
    net.wait_for("c1 up", lambda: net.tun_address("c1"))
    assert peer(net.status(), "c1")["cipher"] == "aes-256-gcm"
    assert net.client_status("c1")["cipher"] == "aes-256-gcm"
    tun_net.tcp_transfer(net, "c1", "srv", "10.99.0.1", mib=8)


def test_a_client_that_does_not_offer_aes_gets_chacha(net):
    net.wait_for("c2 up", lambda: net.tun_address("c2"))
    assert peer(net.status(), "c2")["cipher"] == "chacha20-poly1305"
    assert net.client_status("c2")["cipher"] == "chacha20-poly1305"
    r = net.exec("c2", "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.99.0.1", check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_clients_of_both_suites_reach_each_other(net):
    a2 = net.wait_for("c2 up", lambda: net.tun_address("c2")).split("/")[0]
    net.wait_for("c1 up", lambda: net.tun_address("c1"))
    r = net.exec("c1", "ping", "-c", "3", "-i", "0.2", "-W", "2", a2, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    text = subprocess.run([net.tool, "status", "--tun", "tn0"], check=True, capture_output=True, text=True,
                          env=net.env("server"), timeout=10).stdout
    assert "cipher aes-256-gcm" in text and "cipher chacha20-poly1305" in text, text


def test_an_unknown_cipher_is_a_config_error(net):
    conf = net.write("bad.toml", open(net.path("c1.toml")).read() + 'cipher = "rot13"\n')
    r = subprocess.run([net.tool, "client", "-c", conf, "--check-config"], capture_output=True, text=True)
    assert r.returncode == 78, r.stderr
    assert "bad.toml:" in r.stderr and "cipher" in r.stderr and "chacha20-poly1305" in r.stderr, r.stderr


def test_handshake_rate_is_read_and_range_checked(net):
    base = open(net.path("server.toml")).read().replace("[server]\n", "[server]\nhandshake_rate = {}\n", 1)
    for rate, code in ((5000, 0), (5, 78), ('"fast"', 78)):
        conf = net.write("rate.toml", base.format(rate))
        r = subprocess.run([net.tool, "server", "-c", conf, "--check-config"], capture_output=True, text=True)
        assert r.returncode == code, (rate, r.stderr)
        if code:
            assert "rate.toml:" in r.stderr and "handshake_rate" in r.stderr, r.stderr
