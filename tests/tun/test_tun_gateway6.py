"""IPv6 through the server's gateway (issue 18): with `subnet6` and `nat`, the server masquerades the
tunnel's IPv6 subnet too (`table ip6 tn-tun-TUN`) and turns IPv6 forwarding on, so a client with
`default_route = true` reaches an IPv6 host beyond the server. Every test checks that the server's
host reads as before afterwards: its nft ruleset and every IPv4 and IPv6 forwarding switch (one
device's switch is on while "all" is off, which a plain "all = 0" at exit would lose).

    C (10.211.0.2, default via S) -- S (10.211.0.1 | 10.212.0.1 fd12::1, tn-tun server, defaults via I)
                                                          -- I (10.212.0.2 fd12::2, "the internet")
I has no route back to the tunnel's subnets: C reaches it only through the tunnel and the server's NAT.
"""
import os
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import tun_net  # noqa: E402

PORT = 51820
SERVER = "10.211.0.1"
INTERNET6 = "fd12::2"


@pytest.fixture(scope="module")
def net():
    t = tun_net.routed("tng6", [("c", "10.211.0.2/24", "s", SERVER + "/24"),
                                ("i", f"10.212.0.2/24 {INTERNET6}/64", "s", "10.212.0.1/24 fd12::1/64")],
                       [("c", "route", "add", "default", "via", SERVER), ("s", "route", "add", "default", "via", "10.212.0.2"),
                        ("s", "-6", "route", "add", "default", "via", INTERNET6)])
    with t:
        t.inet, t.wan = t.devs[1]
        t.exec("s", "sysctl", "-qw", "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0")
        t.exec("s", "sysctl", "-qw", f"net.ipv6.conf.{t.wan}.forwarding=1")  # on for one device only
        t.wait_for("the IPv6 link", lambda: t.exec("s", "ping", "-6", "-c", "1", "-W", "1", INTERNET6,
                                                   check=False).returncode == 0)
        yield t


def server_config(t, extra=""):
    return t.write("server.toml", f"""[server]
listen = "0.0.0.0:{PORT}"
private_key_file = "server.key"
tun = "tn0"
subnet = "10.99.0.0/24"
subnet6 = "fd00:99::/64"
{extra}
[[peer]]
name = "c"
public_key = "{t.client_pub}"
""")


def client_config(t):
    return t.write("c.toml", f"""[client]
server = "{SERVER}:{PORT}"
private_key_file = "c.key"
server_public_key = "{t.server_pub}"
tun = "tnc0"
persistent_keepalive = 1
default_route = true
""")


def server_host(t):
    forwarding = t.exec("s", "sh", "-c", "grep -H . /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/*/forwarding")
    return t.exec("s", "nft", "list", "ruleset").stdout, forwarding.stdout, t.exec("s", "ip", "-6", "route").stdout


def client_host(t):
    return [t.exec("c", "ip", *args).stdout for args in (["route"], ["-6", "route"], ["rule"], ["-6", "rule"])]


def nat6_state(t):
    return ("table ip6 tn-tun-tn0" in t.exec("s", "nft", "list", "tables").stdout,
            t.exec("s", "sysctl", "-n", "net.ipv6.conf.all.forwarding").stdout.strip())


OFFSET = {}


def start(t, name, host, *args):
    OFFSET[name] = len(t.log(name))
    return t.start(name, host, *args)


def stop(t, name):
    proc = t.procs[name]
    t.stop(name)
    assert proc.returncode == 0, t.log(name)


def test_a_full_tunnel_reaches_an_ipv6_host_through_the_servers_nat(net):
    # Without the tunnel the client has no IPv6 way out, and the internet host none back.
    assert net.exec("c", "ping", "-6", "-c", "1", "-W", "1", INTERNET6, check=False).returncode != 0
    assert "fd00:99" not in net.exec("i", "ip", "-6", "route").stdout
    before_c, before_s = client_host(net), server_host(net)
    start(net, "server", "s", "server", "-c", server_config(net, f'nat = "{net.wan}"'))
    start(net, "c", "c", "client", "-c", client_config(net))
    try:
        net.wait_for("c connected", lambda: net.tun_address("c", "tnc0") and "connected" in net.log("c")[OFFSET["c"]:])
        net.wait_for("the pushed IPv6 default", lambda: "dev tnc0" in net.exec("c", "ip", "-6", "route", "get", INTERNET6,
                                                                                check=False).stdout)
        r = net.exec("c", "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", INTERNET6, check=False)
        assert r.returncode == 0, r.stdout + r.stderr + net.log("server") + net.log("c")
        ruleset = net.exec("s", "nft", "list", "ruleset").stdout
        assert "table ip6 tn-tun-tn0" in ruleset and "ip6 saddr fd00:99::/64" in ruleset, ruleset
        assert nat6_state(net) == (True, "1")
        tun_net.tcp_transfer(net, "c", "i", INTERNET6, mib=16)
        # The server's endpoint is still reached over the underlay, not through the tunnel.
        assert "tnc0" not in net.exec("c", "ip", "route", "get", SERVER).stdout
    finally:
        stop(net, "c")
        stop(net, "server")
    assert client_host(net) == before_c
    assert server_host(net) == before_s


def test_ipv6_nat_left_by_a_killed_server_is_undone_at_the_next_start(net):
    before = server_host(net)
    proc = start(net, "server", "s", "server", "-c", server_config(net, f'nat = "{net.wan}"'))
    net.wait_for("nat on", lambda: nat6_state(net) == (True, "1"))
    net.wait_for("the control socket", lambda: net.status())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    net.procs.pop("server")
    assert nat6_state(net) == (True, "1")  # a kill cannot clean up
    start(net, "server", "s", "server", "-c", server_config(net))  # NAT now off: the leftovers go all the same
    net.wait_for("the leftovers undone", lambda: "did not stop cleanly" in net.log("server")[OFFSET["server"]:])
    assert nat6_state(net) == (False, "0")
    stop(net, "server")
    assert server_host(net) == before


def test_sighup_turns_ipv6_nat_on_and_off(net):
    before = server_host(net)
    proc = start(net, "server", "s", "server", "-c", server_config(net))
    try:
        net.wait_for("the control socket", lambda: net.status())
        assert nat6_state(net) == (False, "0")
        server_config(net, f'nat = "{net.wan}"')
        proc.send_signal(signal.SIGHUP)
        net.wait_for("nat on after SIGHUP", lambda: nat6_state(net) == (True, "1"))
        server_config(net)
        proc.send_signal(signal.SIGHUP)
        net.wait_for("nat off after SIGHUP", lambda: nat6_state(net) == (False, "0"))
    finally:
        stop(net, "server")
    assert server_host(net) == before


def test_a_nat_device_that_does_not_exist_changes_nothing_with_subnet6(net):
    before = server_host(net)
    links = net.exec("s", "ip", "-o", "link").stdout
    r = net.exec("s", net.tool, "server", "-c", server_config(net, 'nat = "nosuchdev0"'), check=False,
                 env=net.env("server"))
    assert r.returncode == 78 and "nosuchdev0" in r.stderr and "no such network device" in r.stderr, r.stderr
    assert server_host(net) == before
    assert net.exec("s", "ip", "-o", "link").stdout == links  # no TUN device either
