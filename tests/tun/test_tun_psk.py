"""tn-tun's optional per-peer pre-shared key (PROTOCOL.tun.md §4, revision 3) end to end in network
namespaces: a client holding the key its [[peer]] entry names connects and carries traffic, a peer
without a key still works next to it, and a client with the wrong key gets no session."""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import tun_net  # noqa: E402
from tun_net import peer  # noqa: E402

PORT = 51820


def genpsk(t, name):
    path = t.path(name)
    subprocess.run([t.tool, "genpsk", "-o", path], check=True)
    return path


def client_config(t, name, server_pub, psk=None):
    return t.client_config(name, server_pub, PORT, f'preshared_key_file = "{os.path.basename(psk)}"\n' if psk else "")


@pytest.fixture(scope="module")
def net():
    tun_net.skip_unless_possible()
    t = tun_net.Topology(names=("srv", "c1", "c2", "c3"))
    try:
        server_pub = t.keypair("server")
        keys = {n: t.keypair(n) for n in ("c1", "c2", "c3")}
        shared, wrong = genpsk(t, "c1.psk"), genpsk(t, "c3-wrong.psk")
        c3_server_side = genpsk(t, "c3.psk")
        text = f'[server]\nlisten = "0.0.0.0:{PORT}"\nprivate_key_file = "server.key"\ntun = "tn0"\nsubnet = "10.99.0.0/24"\n'
        text += f'\n[[peer]]\nname = "c1"\npublic_key = "{keys["c1"]}"\npreshared_key_file = "c1.psk"\n'
        text += f'\n[[peer]]\nname = "c2"\npublic_key = "{keys["c2"]}"\n'
        text += f'\n[[peer]]\nname = "c3"\npublic_key = "{keys["c3"]}"\npreshared_key_file = "c3.psk"\n'
        conf = t.write("server.toml", text)
        r = subprocess.run([t.tool, "server", "-c", conf, "--check-config"], capture_output=True, text=True)
        assert r.returncode == 0 and "readable by" not in r.stderr, r.stderr  # genpsk writes 0600
        assert os.stat(c3_server_side).st_mode & 0o777 == 0o600
        t.start("server", "srv", "server", "-c", conf)
        t.wait_for("the control socket", lambda: t.status())
        t.start("c1", "c1", "client", "-c", client_config(t, "c1", server_pub, shared))
        t.start("c2", "c2", "client", "-c", client_config(t, "c2", server_pub))
        t.start("c3", "c3", "client", "-c", client_config(t, "c3", server_pub, wrong))
        yield t
    finally:
        t.close()


def ping(t, host, dst):
    return t.exec(host, "ping", "-c", "3", "-i", "0.2", "-W", "2", dst, check=False)


def test_the_client_with_the_key_connects_and_carries_traffic(net):
    net.wait_for("c1 up", lambda: net.tun_address("c1"))
    r = ping(net, "c1", "10.99.0.1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert peer(net.status(), "c1")["connected"]


def test_a_peer_without_a_key_works_beside_it(net):
    a2 = net.wait_for("c2 up", lambda: net.tun_address("c2")).split("/")[0]
    net.wait_for("c1 up", lambda: net.tun_address("c1"))
    r = ping(net, "c1", a2)  # client to client, through the server, one side keyed and one not
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_wrong_key_gets_no_session(net):
    # The server answers c3's initiation (its static key is known), but the response does not
    # authenticate under c3's key: the client drops it, and neither side ever has a session.
    net.wait_for("the server to answer c3", lambda: peer(net.status(), "c3")["endpoint"])
    net.wait_for("c3 to drop the response", lambda: net.client_status("c3")["dropped"] >= 2)
    st = net.client_status("c3")
    assert not st["connected"] and st["handshakes"] == 0 and st["address"] is None, st
    assert not peer(net.status(), "c3")["connected"]
    assert net.tun_address("c3") is None
    assert "connected address=" not in net.log("c3")
