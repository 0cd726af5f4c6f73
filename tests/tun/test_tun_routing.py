"""tn-tun client and the host's routing table (issue 16 item 3, 17 item 6): with `fwmark = 0` (the
full tunnel by halves; test_tun_fullroute.py has the policy-routing one) a pushed 0.0.0.0/0 never
replaces the client's default route, the server stays reached over the underlay while traffic to
others goes through the tunnel, and `ip route` / `ip rule` read byte for byte as before after a clean
exit and after SIGKILL + restart + exit. Also: two clients in two namespaces may both call their TUN
tnc0 while sharing one state directory.

    C (10.201.0.2, default via R) -- R (router, 10.203.0.1 on lo) -- S (10.202.0.2, tn-tun server)
    C2 (10.204.0.2, default via R) -/
"""
import json
import os
import signal
import stat
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import tun_net  # noqa: E402

PORT = 51820
OTHER = "10.203.0.1"  # a host beyond the router: reached through the tunnel while it is up


@pytest.fixture(scope="module")
def net():
    tun_net.skip_unless_possible()
    t = tun_net.Topology(names=(), hub=False)
    try:
        for name in ("c", "r", "s", "c2"):
            t.add_ns(name, "tnr")
        t.uplink, _ = t.link("c", "10.201.0.2/24", "r", "10.201.0.1/24")
        t.link("c", "10.205.0.2/24", "r", "10.205.0.1/24")  # "another network" for roaming
        t.link("r", "10.202.0.1/24", "s", "10.202.0.2/24")
        t.link("c2", "10.204.0.2/24", "r", "10.204.0.1/24")
        t.exec("c", "ip", "route", "add", "default", "via", "10.201.0.1")
        t.exec("c2", "ip", "route", "add", "default", "via", "10.204.0.1")
        t.exec("s", "ip", "route", "add", "default", "via", "10.202.0.1")
        t.exec("r", "ip", "addr", "add", OTHER + "/32", "dev", "lo")
        t.exec("r", "ip", "route", "add", "10.99.0.0/24", "via", "10.202.0.2")  # replies to tunnel addresses
        for host in ("r", "s"):
            t.exec(host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        t.server_pub = t.keypair("server")
        peers = [("c", t.keypair("c")), ("c2", t.keypair("c2"))]
        text = f"""[server]
listen = "0.0.0.0:{PORT}"
private_key_file = "server.key"
tun = "tn0"
subnet = "10.99.0.0/24"
routes = ["0.0.0.0/0"]
"""
        for name, pub in peers:
            text += f'\n[[peer]]\nname = "{name}"\npublic_key = "{pub}"\n'
        t.start("server", "s", "server", "-c", t.write("server.toml", text))
        t.wait_for("the control socket", lambda: t.status())
        for name, _ in peers:
            t.write(name + ".toml", f"""[client]
server = "10.202.0.2:{PORT}"
private_key_file = "{name}.key"
server_public_key = "{t.server_pub}"
tun = "tnc0"
apply_routes = true
persistent_keepalive = 1
fwmark = 0
""")
        yield t
    finally:
        t.close()



def client_env(t):
    # Every client shares one state directory, as one user's clients on one host would.
    state = t.path("state-clients")
    os.makedirs(state, mode=0o700, exist_ok=True)
    return dict(os.environ, TN_STATE_DIR=state)


def client_status(t, *args, host="c"):
    out = subprocess.run(["ip", "netns", "exec", t.ns[host].name, t.tool, "status", "--json", "--client", *args],
                         check=True, capture_output=True, text=True, env=client_env(t), timeout=30).stdout
    return json.loads(out)


def start_client(t, name="c"):
    OFFSET[name] = len(t.log(name))
    return t.start(name, name, "client", "-c", t.path(name + ".toml"),
                   env={"TN_STATE_DIR": client_env(t)["TN_STATE_DIR"]})


def tables(t, host="c"):
    return t.exec(host, "ip", "route").stdout, t.exec(host, "ip", "rule").stdout


OFFSET = {}  # where each client's log of its current run starts


def connected(t, name="c"):
    return t.tun_address(name, "tnc0") and "connected" in t.log(name)[OFFSET[name]:]


def peer(t, name):
    return next(p for p in t.status()["peers"] if p["name"] == name)


def test_default_route_is_kept_and_the_server_stays_on_the_underlay(net):
    before = tables(net)
    start_client(net)
    try:
        net.wait_for("c connected", lambda: connected(net))
        routes = net.exec("c", "ip", "route").stdout
        assert "default via 10.201.0.1" in routes, routes  # the host's default route is still there
        to_server = net.exec("c", "ip", "route", "get", "10.202.0.2").stdout
        assert "via 10.201.0.1" in to_server and "tnc0" not in to_server, to_server
        to_other = net.exec("c", "ip", "route", "get", OTHER).stdout
        assert "dev tnc0" in to_other, to_other
        rx = peer(net, "c")["rx_packets"]
        r = net.exec("c", "ping", "-c", "3", "-i", "0.2", "-W", "2", OTHER, check=False)
        assert r.returncode == 0, r.stdout + r.stderr + net.log("c")
        assert peer(net, "c")["rx_packets"] >= rx + 3  # the pings went through the tunnel
        # The client answers `status` too, in its namespace (issue 17 item 7).
        st = client_status(net, "--tun", "tnc0")
        assert st["role"] == "client" and st["connected"] and st["interface"] == "tnc0"
        assert st["server"] == f"10.202.0.2:{PORT}" and st["endpoint"] == f"10.202.0.2:{PORT}"
        assert st["address"] == net.tun_address("c", "tnc0")
        assert st["last_handshake"].endswith("Z")
        assert st["rx_packets"] >= 3 and st["tx_packets"] >= 3
        assert "0.0.0.0/1 dev tnc0" in st["routes"] and "128.0.0.0/1 dev tnc0" in st["routes"]
        assert any(r.startswith("10.202.0.2/32 via 10.201.0.1 dev ") for r in st["routes"])
        text = subprocess.run(["ip", "netns", "exec", net.ns["c"].name, net.tool, "status", "-c", net.path("c.toml")],
                              capture_output=True, text=True, env=client_env(net), timeout=30)
        assert text.returncode == 0 and "interface tnc0" in text.stdout and "connected" in text.stdout, text.stderr
        # From another namespace there is no such client (the socket is per namespace).
        r = subprocess.run([net.tool, "status", "--client", "--tun", "tnc0"], capture_output=True, text=True,
                           env=client_env(net), timeout=30)
        assert r.returncode == 69
        state = net.path("state-clients")
        sock = [f for f in os.listdir(state) if f.endswith(".sock")]
        assert sock and all(stat.S_IMODE(os.stat(os.path.join(state, f)).st_mode) == 0o600 for f in sock)
        files = [f for f in os.listdir(state) if f.endswith(".routes")]
        assert len(files) == 1
        assert stat.S_IMODE(os.stat(os.path.join(state, files[0])).st_mode) == 0o600
    finally:
        proc = net.procs["c"]
        net.stop("c")
    assert proc.returncode == 0, net.log("c")
    assert tables(net) == before


def test_after_sigkill_the_next_start_cleans_up(net):
    before = tables(net)
    proc = start_client(net)
    net.wait_for("c connected", lambda: connected(net))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    net.procs.pop("c")
    # The host route to the server outlives the process (the routes through the TUN went with it).
    assert "10.202.0.2 via 10.201.0.1" in net.exec("c", "ip", "route").stdout
    start_client(net)
    net.wait_for("c connected again", lambda: connected(net))
    assert net.exec("c", "ip", "route").stdout.count("10.202.0.2 via") == 1
    assert "did not stop cleanly" in net.log("c")[OFFSET["c"]:]
    proc = net.procs["c"]
    net.stop("c")
    assert proc.returncode == 0, net.log("c")
    assert tables(net) == before


def test_clients_in_two_namespaces_may_share_a_tun_name(net):
    before = tables(net, "c2")
    start_client(net, "c")
    start_client(net, "c2")
    try:
        net.wait_for("c connected", lambda: connected(net, "c"))
        net.wait_for("c2 connected", lambda: connected(net, "c2"))
        assert net.procs["c2"].poll() is None, net.log("c2")
        assert client_status(net, "--tun", "tnc0", host="c2")["connected"]
        assert client_status(net, "--tun", "tnc0", host="c")["connected"]
    finally:
        net.stop("c2")
        net.stop("c")
    assert tables(net, "c2") == before


def test_the_client_follows_when_its_underlay_changes(net):
    # Last: it changes the client's network for good. The first uplink goes away (a laptop leaving
    # one network), taking the default route and our host route to the server with it; the second
    # gets a default route. The client finds the new path and reconnects through it.
    start_client(net)
    try:
        net.wait_for("c connected", lambda: connected(net))
        assert "10.202.0.2 via 10.201.0.1" in net.exec("c", "ip", "route").stdout
        net.exec("c", "ip", "link", "set", net.uplink, "down")
        net.exec("c", "ip", "route", "add", "default", "via", "10.205.0.1")
        net.wait_for("the host route through the new gateway",
                     lambda: "10.202.0.2 via 10.205.0.1" in net.exec("c", "ip", "route").stdout, timeout=120)
        net.wait_for("traffic through the tunnel again",
                     lambda: net.exec("c", "ping", "-c", "1", "-W", "2", OTHER, check=False).returncode == 0, timeout=60)
        assert "dev tnc0" in net.exec("c", "ip", "route", "get", OTHER).stdout
    finally:
        proc = net.procs["c"]
        net.stop("c")
    assert proc.returncode == 0, net.log("c")
    routes = net.exec("c", "ip", "route").stdout
    assert "tnc0" not in routes and "10.202.0.2" not in routes, routes
