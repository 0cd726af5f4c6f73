"""tn-tun as a full VPN (issue 18): a client that asks for the full tunnel itself (`default_route =
true`, the server pushes no default route), and a server that is the clients' gateway to the
internet (`nat`), and a client that uses the DNS servers the server pushes (`apply_dns`). Every test
also checks that the hosts read as before afterwards: the client's `ip route` / `ip rule` and
resolv.conf, the server's `nft list ruleset`, net.ipv4.ip_forward and every device's IPv4 forwarding
switch (one is on while ip_forward is off, which ip_forward = 0 at exit alone would lose).

    C (10.211.0.2, default via S) -- S (10.211.0.1 | 10.212.0.1, tn-tun server, default via I)
                                                          -- I (10.212.0.2, "the internet")
I has no route back to C's network: C reaches it only through the tunnel and the server's NAT.
"""
import os
import shutil
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import tun_net  # noqa: E402

PORT = 51820
SERVER = "10.211.0.1"
INTERNET = "10.212.0.2"
SECRET_NAME, SECRET_ADDR = "only-the-server-knows.tn.test", "10.123.45.67"
ORIGINAL_RESOLV = b"# the client's own resolver\nnameserver 192.0.2.53\noptions timeout:1\n"


@pytest.fixture(scope="module")
def net():
    t = tun_net.routed("tng", [("c", "10.211.0.2/24", "s", SERVER + "/24"), ("i", INTERNET + "/24", "s", "10.212.0.1/24")],
                       [("c", "route", "add", "default", "via", SERVER), ("s", "route", "add", "default", "via", INTERNET)])
    with t:
        t.wan = t.devs[1][1]
        t.exec("s", "sysctl", "-qw", "net.ipv4.ip_forward=0")
        # On for one device only: turning ip_forward on and off again switches every device's off.
        t.exec("s", "sysctl", "-qw", f"net.ipv4.conf.{t.wan}.forwarding=1")
        web = t.path("www")
        os.makedirs(web)
        t.token = os.urandom(8).hex()
        t.write("www/token.txt", t.token)
        # A web server on the "internet" host and a resolver only the server's namespace has (for the
        # client to find through the tunnel): t stops them by PID.
        t.spawn("i", sys.executable, "-m", "http.server", "--bind", INTERNET, "--directory", web, "8080",
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t.wait_for("the web server", lambda: t.exec("i", "curl", "-sf", f"http://{INTERNET}:8080/token.txt",
                                                    check=False).stdout == t.token)
        t.spawn("s", sys.executable, os.path.join(os.path.dirname(__file__), "dns_answer.py"), "0.0.0.0", SECRET_NAME,
                SECRET_ADDR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # `ip netns exec` bind-mounts /etc/netns/NS/resolv.conf over /etc/resolv.conf: the client
        # changes that file, never the host's.
        made_netns_dir = not os.path.isdir("/etc/netns")
        t.resolv = os.path.join("/etc/netns", t.ns["c"].name, "resolv.conf")
        try:
            os.makedirs(os.path.dirname(t.resolv))
            with open(t.resolv, "wb") as f:
                f.write(ORIGINAL_RESOLV)
            yield t
        finally:
            shutil.rmtree(os.path.dirname(t.resolv), ignore_errors=True)
            if made_netns_dir:
                os.rmdir("/etc/netns")


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
    forwarding = t.exec("s", "sh", "-c", "grep -H . /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/*/forwarding")
    return t.exec("s", "nft", "list", "ruleset").stdout, forwarding.stdout, t.exec("s", "ip", "route").stdout


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
    start(net, "c", "c", "client", "-c", client_config(net, "default_route = true\nfwmark = 0"))  # by halves
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


def test_nat_makes_the_server_the_clients_gateway(net):
    # Without the tunnel the client cannot reach the internet host at all.
    assert net.exec("c", "ping", "-c", "1", "-W", "1", INTERNET, check=False).returncode != 0
    before_c, before_s = client_tables(net), server_host(net)
    start(net, "server", "s", "server", "-c", server_config(net, "nat = true"))
    start(net, "c", "c", "client", "-c", client_config(net, "default_route = true"))
    try:
        net.wait_for("c connected", lambda: connected(net))
        ruleset = net.exec("s", "nft", "list", "ruleset").stdout
        assert "table ip tn-tun-tn0" in ruleset and "masquerade" in ruleset, ruleset
        assert net.exec("s", "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
        assert "dev tnc0" in net.exec("c", "ip", "route", "get", INTERNET).stdout
        r = net.exec("c", "ping", "-c", "3", "-i", "0.2", "-W", "2", INTERNET, check=False)
        assert r.returncode == 0, r.stdout + r.stderr + net.log("server") + net.log("c")
        r = net.exec("c", "curl", "-sS", "--max-time", "20", f"http://{INTERNET}:8080/token.txt", check=False)
        assert r.stdout == net.token, r.stderr
        # The server's endpoint is still reached over the underlay, not through the tunnel.
        assert "tnc0" not in net.exec("c", "ip", "route", "get", SERVER).stdout
        assert net.exec("c", "ping", "-c", "1", "-W", "2", SERVER, check=False).returncode == 0
    finally:
        stop(net, "c")
        stop(net, "server")
    assert client_tables(net) == before_c
    assert server_host(net) == before_s


def test_nat_left_by_a_killed_server_is_undone_at_the_next_start(net):
    before = server_host(net)
    proc = start(net, "server", "s", "server", "-c", server_config(net, 'nat = "' + net.wan + '"'))
    net.wait_for("nat on", lambda: "tn-tun-tn0" in net.exec("s", "nft", "list", "tables").stdout)
    net.wait_for("the control socket", lambda: net.status())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    net.procs.pop("server")
    assert "tn-tun-tn0" in net.exec("s", "nft", "list", "tables").stdout  # a kill cannot clean up
    assert net.exec("s", "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
    start(net, "server", "s", "server", "-c", server_config(net))  # NAT now off: the leftovers go all the same
    net.wait_for("the leftovers undone", lambda: "did not stop cleanly" in net.log("server")[OFFSET["server"]:])
    assert "tn-tun-tn0" not in net.exec("s", "nft", "list", "tables").stdout
    stop(net, "server")
    assert server_host(net) == before


def nat_state(t):
    return "tn-tun-tn0" in t.exec("s", "nft", "list", "tables").stdout, \
        t.exec("s", "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip()


def test_sighup_turns_nat_on_and_off(net):
    before = server_host(net)
    proc = start(net, "server", "s", "server", "-c", server_config(net))
    try:
        net.wait_for("the control socket", lambda: net.status())
        assert nat_state(net) == (False, "0")
        server_config(net, 'nat = "' + net.wan + '"')
        proc.send_signal(signal.SIGHUP)
        net.wait_for("nat on after SIGHUP", lambda: nat_state(net) == (True, "1"))
        # A device that does not exist: the reload is refused and NAT stays as it was.
        server_config(net, 'nat = "nosuchdev0"')
        proc.send_signal(signal.SIGHUP)
        net.wait_for("the refused reload", lambda: "nosuchdev0" in net.log("server")[OFFSET["server"]:])
        assert "no such network device" in net.log("server")[OFFSET["server"]:]
        assert nat_state(net) == (True, "1")
        server_config(net)
        proc.send_signal(signal.SIGHUP)
        net.wait_for("nat off after SIGHUP", lambda: nat_state(net) == (False, "0"))
        assert net.exec("s", "nft", "list", "ruleset").stdout == before[0]
    finally:
        stop(net, "server")
    assert server_host(net) == before


def test_a_nat_device_that_does_not_exist_changes_nothing(net):
    before = server_host(net)
    links = net.exec("s", "ip", "-o", "link").stdout
    cfg = server_config(net, 'nat = "nosuchdev0"')
    r = net.exec("s", net.tool, "server", "-c", cfg, check=False, env=net.env("server"))
    assert r.returncode == 78 and "nosuchdev0" in r.stderr and "no such network device" in r.stderr, r.stderr
    assert server_host(net) == before
    assert net.exec("s", "ip", "-o", "link").stdout == links  # no TUN device either


def resolv_conf(t):
    with open(t.resolv, "rb") as f:
        return f.read()


def test_apply_dns_uses_the_pushed_resolver_and_puts_resolv_conf_back(net):
    with open("/etc/resolv.conf", "rb") as f:
        host_resolv = f.read()
    start(net, "server", "s", "server", "-c", server_config(net, 'dns = ["10.99.0.1"]'))
    start(net, "c", "c", "client", "-c", client_config(net, "apply_dns = true"))
    try:
        net.wait_for("c connected", lambda: connected(net))
        net.wait_for("the pushed resolver in use", lambda: b"nameserver 10.99.0.1" in resolv_conf(net))
        assert net.exec("c", "cat", "/etc/resolv.conf").stdout.encode() == resolv_conf(net)
        r = net.exec("c", "dig", "+short", "+time=2", "+tries=3", SECRET_NAME, check=False)
        assert r.stdout.strip() == SECRET_ADDR, r.stdout + r.stderr
    finally:
        stop(net, "c")
    assert resolv_conf(net) == ORIGINAL_RESOLV
    # A killed client cannot put it back; the next start does, byte for byte.
    proc = start(net, "c", "c", "client", "-c", client_config(net, "apply_dns = true"))
    net.wait_for("the pushed resolver in use", lambda: b"nameserver 10.99.0.1" in resolv_conf(net))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    net.procs.pop("c")
    assert b"nameserver 10.99.0.1" in resolv_conf(net)
    start(net, "c", "c", "client", "-c", client_config(net))  # apply_dns off now: put back all the same
    net.wait_for("resolv.conf put back", lambda: resolv_conf(net) == ORIGINAL_RESOLV)
    stop(net, "c")
    stop(net, "server")
    assert resolv_conf(net) == ORIGINAL_RESOLV
    with open("/etc/resolv.conf", "rb") as f:
        assert f.read() == host_resolv  # the host's own was never touched
