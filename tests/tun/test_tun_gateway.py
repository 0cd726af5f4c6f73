"""tn-tun as a full VPN (issue 18): a client that asks for the full tunnel itself (`default_route =
true`, the server pushes no default route), and a server that is the clients' gateway to the
internet (`nat`). Every test also checks that the hosts read as before afterwards: the client's
`ip route` / `ip rule`, the server's `nft list ruleset` and net.ipv4.ip_forward.

    C (10.211.0.2, default via S) -- S (10.211.0.1 | 10.212.0.1, tn-tun server, default via I)
                                                          -- I (10.212.0.2, "the internet")
I has no route back to C's network: C reaches it only through the tunnel and the server's NAT.
"""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import tun_net  # noqa: E402
from tun_net import harness  # noqa: E402

PORT = 51820
SERVER = "10.211.0.1"
INTERNET = "10.212.0.2"


def can_run():
    if os.geteuid() != 0:
        return "needs root for network namespaces and TUN devices"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    return None


@pytest.fixture(scope="module")
def net():
    if can_run():
        pytest.skip(can_run())
    t = tun_net.Topology(names=())
    try:
        for name in ("c", "s", "i"):
            t.ns[name] = harness.Netns("tng" + name)
        harness.veth(t.ns["c"], "10.211.0.2/24", t.ns["s"], "10.211.0.1/24")
        _, t.wan = harness.veth(t.ns["i"], INTERNET + "/24", t.ns["s"], "10.212.0.1/24")
        t.exec("c", "ip", "route", "add", "default", "via", SERVER)
        t.exec("s", "ip", "route", "add", "default", "via", INTERNET)
        t.exec("s", "sysctl", "-qw", "net.ipv4.ip_forward=0")
        t.server_pub = t.keypair("server")
        t.client_pub = t.keypair("c")
        yield t
    finally:
        t.close()


def server_config(t, extra=""):
    return t.write("server.toml", f"""[server]
listen = "0.0.0.0:{PORT}"
private_key_file = "server.key"
tun = "tn0"
subnet = "10.99.0.0/24"
{extra}
[[peer]]
name = "c"
public_key = "{t.client_pub}"
""")


def client_config(t, extra=""):
    return t.write("c.toml", f"""[client]
server = "{SERVER}:{PORT}"
private_key_file = "c.key"
server_public_key = "{t.server_pub}"
tun = "tnc0"
persistent_keepalive = 1
{extra}
""")


def client_tables(t):
    return t.exec("c", "ip", "route").stdout, t.exec("c", "ip", "rule").stdout


def server_host(t):
    return (t.exec("s", "nft", "list", "ruleset").stdout, t.exec("s", "sysctl", "-n", "net.ipv4.ip_forward").stdout,
            t.exec("s", "ip", "route").stdout)


OFFSET = {}


def start(t, name, host, *args):
    OFFSET[name] = len(t.log(name))
    return t.start(name, host, *args)


def connected(t):
    return t.tun_address("c", "tnc0") and "connected" in t.log("c")[OFFSET["c"]:]


def stop(t, name):
    proc = t.procs[name]
    t.stop(name)
    assert proc.returncode == 0, t.log(name)


def peer_rx(t):
    return next(p for p in t.status()["peers"] if p["name"] == "c")["rx_packets"]


def test_default_route_on_the_client_alone_makes_a_full_tunnel(net):
    before = client_tables(net)
    start(net, "server", "s", "server", "-c", server_config(net))
    start(net, "c", "c", "client", "-c", client_config(net, "default_route = true"))
    try:
        net.wait_for("c connected", lambda: connected(net))
        routes = net.exec("c", "ip", "route").stdout
        assert "0.0.0.0/1 dev tnc0" in routes and "128.0.0.0/1 dev tnc0" in routes, routes
        assert f"default via {SERVER}" in routes, routes  # the host's own default route stays
        to_server = net.exec("c", "ip", "route", "get", SERVER).stdout
        assert "tnc0" not in to_server, to_server  # the tunnel's datagrams stay on the underlay
        assert "dev tnc0" in net.exec("c", "ip", "route", "get", INTERNET).stdout
        rx = peer_rx(net)
        net.exec("c", "ping", "-c", "2", "-i", "0.2", "-W", "1", INTERNET, check=False)
        assert peer_rx(net) >= rx + 2  # the pings went into the tunnel (no NAT yet: no answer)
    finally:
        stop(net, "c")
        stop(net, "server")
    assert client_tables(net) == before


def test_default_route_needs_apply_routes(net):
    cfg = client_config(net, "default_route = true\napply_routes = false")
    r = subprocess.run([net.tool, "client", "--check-config", "-c", cfg], capture_output=True, text=True, timeout=30)
    assert r.returncode == 78 and "default_route" in r.stderr, r.stderr
