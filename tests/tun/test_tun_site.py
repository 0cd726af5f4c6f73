"""tn-tun site-to-site (issue 18 item 4): a subnet behind one client (a LAN namespace it routes for)
is reached from another client and from the server through the tunnel; the server routes it to that
peer and pushes it to the others; overlapping subnets across peers are a config error (exit 78).

    srv (192.168.77.1) --bridge-- c1 (.2) -- lan (10.50.0.2, default via c1)
                              \\-- c2 (.3)
"""
import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import tun_net  # noqa: E402
from tun_net import harness  # noqa: E402

PORT = 51820
LAN_HOST = "10.50.0.2"


@pytest.fixture(scope="module")
def net():
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        pytest.skip("needs root and /dev/net/tun")
    t = tun_net.Topology()
    try:
        t.ns["lan"] = harness.Netns("tnlan")
        harness.veth(t.ns["c1"], "10.50.0.1/24", t.ns["lan"], LAN_HOST + "/24")
        t.exec("lan", "ip", "route", "add", "default", "via", "10.50.0.1")
        t.exec("c1", "sysctl", "-qw", "net.ipv4.ip_forward=1")  # c1 is the site's router
        t.server_pub = t.keypair("server")
        t.pubs = {name: t.keypair(name) for name in ("c1", "c2")}
        yield t
    finally:
        t.close()


def server_config(t, c2_routes="[]", extra="", c1_routes='["10.50.0.0/24"]'):
    return t.write("server.toml", f"""[server]
listen = "0.0.0.0:{PORT}"
private_key_file = "server.key"
subnet = "10.99.0.0/24"
{extra}
[[peer]]
name = "c1"
public_key = "{t.pubs['c1']}"
routes = {c1_routes}

[[peer]]
name = "c2"
public_key = "{t.pubs['c2']}"
routes = {c2_routes}
""")


def client_config(t, name):
    return t.write(name + ".toml", f"""[client]
server = "{t.addr['srv']}:{PORT}"
private_key_file = "{name}.key"
server_public_key = "{t.server_pub}"
tun = "tnc0"
persistent_keepalive = 1
""")


def test_a_subnet_behind_a_client_is_reached_from_the_other_client_and_the_server(net):
    net.start("server", "srv", "server", "-c", server_config(net))
    net.wait_for("the control socket", lambda: net.status())
    for name in ("c1", "c2"):
        net.start(name, name, "client", "-c", client_config(net, name))
    for name in ("c1", "c2"):
        net.wait_for(name + " connected", lambda: net.tun_address(name, "tnc0") and "connected" in net.log(name))
    assert "10.50.0.0/24 dev tnc0" in net.exec("c2", "ip", "route").stdout  # pushed to the other client
    assert "10.50.0.0/24 dev tnc0" not in net.exec("c1", "ip", "route").stdout  # not back to its own router
    assert "10.50.0.0/24 dev tn0" in net.exec("srv", "ip", "route").stdout
    r = net.exec("c2", "ping", "-c", "3", "-i", "0.2", "-W", "2", LAN_HOST, check=False)
    assert r.returncode == 0, r.stdout + net.log("server") + net.log("c1")
    r = net.exec("srv", "ping", "-c", "3", "-i", "0.2", "-W", "2", LAN_HOST, check=False)
    assert r.returncode == 0, r.stdout + net.log("server")
    assert net.status()["dropped"]["spoofed"] == 0  # the site's answers came from c1: accepted
    for name in ("c2", "c1", "server"):
        proc = net.procs[name]
        net.stop(name)
        assert proc.returncode == 0, net.log(name)
    assert "10.50.0.0/24" not in net.exec("srv", "ip", "route").stdout  # gone with the TUN


def test_overlapping_subnets_across_peers_exit_78(net):
    cfg = server_config(net, '["10.50.0.128/25"]')
    r = net.exec("srv", net.tool, "server", "--check-config", "-c", cfg, check=False)
    assert r.returncode == 78 and "overlaps 10.50.0.0/24 of peer 'c1'" in r.stderr, r.stderr


INTERNET = "10.212.0.2"


def test_with_nat_a_host_behind_a_client_reaches_the_internet_through_the_server(net):
    # An "internet" host beyond the server, with no route back to the site's subnet: the LAN host
    # reaches it only if the server masquerades the site subnet too, not just the tunnel's.
    net.ns["inet"] = harness.Netns("tninet")
    wan, _ = harness.veth(net.ns["srv"], "10.212.0.1/24", net.ns["inet"], INTERNET + "/24")
    nft_before = net.exec("srv", "nft", "list", "ruleset").stdout
    cfg = server_config(net, extra=f'nat = "{wan}"\nroutes = ["10.212.0.0/24"]')
    proc = net.start("server", "srv", "server", "-c", cfg)
    try:
        net.wait_for("the control socket", lambda: net.status())
        net.start("c1", "c1", "client", "-c", client_config(net, "c1"))
        net.wait_for("c1 connected", lambda: "10.212.0.0/24 dev tnc0" in net.exec("c1", "ip", "route").stdout)
        rules = net.exec("srv", "nft", "list", "table", "ip", "tn-tun-tn0").stdout
        assert "10.50.0.0/24" in rules and "10.99.0.0/24" in rules, rules
        r = net.exec("lan", "ping", "-c", "3", "-i", "0.2", "-W", "2", INTERNET, check=False)
        assert r.returncode == 0, r.stdout + net.log("server") + net.log("c1")
        # A reload that moves c1's site to another subnet masquerades that one instead.
        server_config(net, extra=f'nat = "{wan}"\nroutes = ["10.212.0.0/24"]', c1_routes='["10.51.0.0/24"]')
        proc.send_signal(signal.SIGHUP)
        net.wait_for("the new site subnet masqueraded",
                     lambda: "10.51.0.0/24" in net.exec("srv", "nft", "list", "table", "ip", "tn-tun-tn0").stdout)
        assert "10.50.0.0/24" not in net.exec("srv", "nft", "list", "table", "ip", "tn-tun-tn0").stdout
    finally:
        for name in ("c1", "server"):
            net.stop(name)
        net.ns.pop("inet").close()
    assert net.exec("srv", "nft", "list", "ruleset").stdout == nft_before


def test_an_ipv6_subnet_behind_a_client_is_reached_from_the_other_client(net):
    # The same LAN with IPv6 too: fd00:50::/64 behind c1, reached from c2 over the tunnel's IPv6.
    lan_dev = net.exec("lan", "ip", "-o", "-4", "addr", "show", "to", LAN_HOST).stdout.split()[1]
    c1_dev = net.exec("c1", "ip", "-o", "-4", "addr", "show", "to", "10.50.0.1").stdout.split()[1]
    net.exec("c1", "ip", "-6", "addr", "add", "fd00:50::1/64", "dev", c1_dev, "nodad")
    net.exec("lan", "ip", "-6", "addr", "add", "fd00:50::2/64", "dev", lan_dev, "nodad")
    net.exec("lan", "ip", "-6", "route", "add", "default", "via", "fd00:50::1")
    net.exec("c1", "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    cfg = server_config(net, extra='subnet6 = "fd00:99::/64"', c1_routes='["10.50.0.0/24", "fd00:50::/64"]')
    net.start("server", "srv", "server", "-c", cfg)
    try:
        net.wait_for("the control socket", lambda: net.status())
        for name in ("c1", "c2"):
            net.start(name, name, "client", "-c", client_config(net, name))
        net.wait_for("the site's IPv6 route on c2", lambda: "fd00:50::/64 dev tnc0" in net.exec("c2", "ip", "-6", "route").stdout)
        assert "fd00:50::/64 dev tn0" in net.exec("srv", "ip", "-6", "route").stdout
        net.wait_for("c1's IPv6 address", lambda: "fd00:99::" in net.exec("c1", "ip", "-6", "addr", "show", "dev", "tnc0", "up").stdout)
        r = net.exec("c2", "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "fd00:50::2", check=False)
        assert r.returncode == 0, r.stdout + net.log("server") + net.log("c1")
        r = net.exec("srv", "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "fd00:50::2", check=False)
        assert r.returncode == 0, r.stdout + net.log("server")
        assert net.status()["dropped"]["spoofed"] == 0
    finally:
        for name in ("c2", "c1", "server"):
            net.stop(name)
    assert "fd00:50::" not in net.exec("srv", "ip", "-6", "route").stdout  # gone with the TUN
