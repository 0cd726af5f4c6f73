"""IPv6 inside the tunnel (issue 18): a dual-stack server (`subnet6`) and two clients in network
namespaces, one reaching the server over an IPv6 underlay and one over IPv4; ping6 to the server and
client to client, 64 MiB of TCP over IPv6 intact, and bad input (a subnet6 the host already routes,
a pushed IPv6 route covering the server's endpoint) refused with exit 78 and the host as it was."""
import os
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import tun_net  # noqa: E402

PORT = 51820
UNDERLAY6 = "fd77::{}"


def server_config(t, name, peers, port=PORT, tun="tn0", subnet6="fd00:99::/64", routes='"fd00:88::/48"', listen="[::]",
                  subnet="10.99.0.0/24"):
    text = f"""[server]
listen = "{listen}:{port}"
private_key_file = "server.key"
tun = "{tun}"
subnet = "{subnet}"
subnet6 = "{subnet6}"
dns = ["10.99.0.1", "fd00:99::1"]
routes = [{routes}]
"""
    for peer, pub in peers:
        text += f'\n[[peer]]\nname = "{peer}"\npublic_key = "{pub}"\n'
    return t.write(name, text)


def client_config(t, name, server, server_pub, tun="tn0", extra=""):
    hook = t.path(name + "-hook.env")
    return t.write(name + ".toml", f"""[client]
server = "{server}"
private_key_file = "{name}.key"
server_public_key = "{server_pub}"
tun = "{tun}"
persistent_keepalive = 1
on_up = "env | grep ^TN_TUN_ | sort > {hook}"
fwmark = 0  # a full tunnel by halves, and the IPv6 refusals that go with them
{extra}
""")


@pytest.fixture(scope="module")
def net():
    tun_net.skip_unless_possible()
    t = tun_net.Topology()
    try:
        for i, host in enumerate(("srv", "c1", "c2"), start=1):
            t.exec(host, "ip", "-6", "addr", "add", UNDERLAY6.format(i) + "/64", "dev", t.dev[host], "nodad")
        t.server_pub = t.keypair("server")
        peers = [("c1", t.keypair("c1")), ("c2", t.keypair("c2"))]
        t.server_conf = server_config(t, "server.toml", peers)
        t.start("server", "srv", "server", "-c", t.server_conf)
        t.wait_for("the control socket", lambda: t.status())
        # c1 over the IPv6 underlay, c2 over IPv4 (the server's [::] socket sees it IPv4-mapped).
        t.start("c1", "c1", "client", "-c", client_config(t, "c1", f"[{UNDERLAY6.format(1)}]:{PORT}", t.server_pub))
        t.start("c2", "c2", "client", "-c", client_config(t, "c2", f"{t.addr['srv']}:{PORT}", t.server_pub))
        yield t
    finally:
        t.close()


def address6(t, host, dev="tn0"):
    r = t.exec(host, "ip", "-6", "-o", "addr", "show", "dev", dev, "scope", "global", "up", check=False)
    words = r.stdout.split()
    return words[words.index("inet6") + 1].split("/")[0] if "inet6" in words else None


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def complete(env_dump):
    """The hook's sorted `env` dump once whole (TN_TUN_SERVER sorts last), else ""."""
    return env_dump if "TN_TUN_SERVER=" in env_dump and env_dump.endswith("\n") else ""


def ping6(t, host, dst):
    return t.exec(host, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", dst, check=False)


def test_clients_get_ipv6_addresses_routes_and_hook_env(net):
    a1 = net.wait_for("c1's IPv6 address", lambda: address6(net, "c1"))
    a2 = net.wait_for("c2's IPv6 address", lambda: address6(net, "c2"))
    st = net.status()
    assert st["address6"] == "fd00:99::1/64"
    by_name = {p["name"]: p for p in st["peers"]}
    # Each IPv6 address is its IPv4 address's twin in subnet6.
    for name, a in (("c1", a1), ("c2", a2)):
        assert a == "fd00:99::" + format(int(by_name[name]["address"].split(".")[3]), "x"), (a, by_name[name])
        assert by_name[name]["address6"] == a
    assert by_name["c1"]["endpoint"].startswith(f"[{UNDERLAY6.format(2)}]:")
    # on_up runs last, after the address, the routes and DNS are applied.
    hook = net.wait_for("c1's on_up hook", lambda: complete(read(net.path("c1-hook.env"))))
    assert "fd00:88::/48 dev tn0" in net.exec("c1", "ip", "-6", "route", "show").stdout
    assert f"TN_TUN_ADDRESS6={a1}\n" in hook and "TN_TUN_PREFIX6=64\n" in hook
    assert "TN_TUN_DNS6=fd00:99::1\n" in hook and "TN_TUN_ROUTES6=fd00:88::/48\n" in hook
    assert "TN_TUN_DNS=10.99.0.1\n" in hook  # the IPv4 list stays IPv4 only
    client = net.exec("c1", net.tool, "status", "--json", "--client", "--tun", "tn0", env=net.env("c1"), timeout=10)
    assert f'"address6":"{a1}/64"' in client.stdout


def test_ping6_client_to_server_and_client_to_client(net):
    net.wait_for("c1's IPv6 address", lambda: address6(net, "c1"))
    a2 = net.wait_for("c2's IPv6 address", lambda: address6(net, "c2"))
    r = ping6(net, "c1", "fd00:99::1")
    assert r.returncode == 0, r.stdout + r.stderr
    r = ping6(net, "c2", "fd00:99::1")  # over the IPv4 underlay
    assert r.returncode == 0, r.stdout + r.stderr
    before = net.status()["dropped"]["spoofed"]
    r = ping6(net, "c1", a2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert net.status()["dropped"]["spoofed"] == before


def test_tcp_64_mib_over_ipv6_arrives_intact(net):
    a1 = net.wait_for("c1's IPv6 address", lambda: address6(net, "c1"))
    net.wait_for("c2's IPv6 address", lambda: address6(net, "c2"))
    tun_net.tcp_transfer(net, "c1", "srv", "fd00:99::1")  # client to server (TSO6 reads on the client)
    tun_net.tcp_transfer(net, "c2", "c1", a1)  # client to client through the server


def host_state(t, host):
    """What a failed start must leave as it was: links, addresses and routes of both families."""
    return [t.exec(host, "ip", *args).stdout for args in
            (["-o", "link", "show"], ["-o", "addr", "show"], ["-4", "route", "show"], ["-6", "route", "show"])]


def test_a_subnet6_the_host_already_routes_exits_78_and_changes_nothing(net):
    # fd77::/64 is the server's underlay: a subnet6 inside it would split that traffic in two.
    conf = server_config(net, "clash.toml", [], port=PORT + 1, tun="tn1", subnet6="fd77::8000/120")
    before = host_state(net, "srv")
    r = net.exec("srv", net.tool, "server", "-c", conf, check=False, env=net.env("clash"))
    assert r.returncode == 78, r.stderr
    assert "subnet6 fd77::8000/120 overlaps a network this host already routes (fd77::/64 dev" in r.stderr, r.stderr
    assert host_state(net, "srv") == before


def test_a_pushed_ipv6_route_over_the_servers_own_address_exits_78(net):
    # Where the server knows its address (listen names it) the config check refuses the push ...
    conf = server_config(net, "loop.toml", [], port=PORT + 2, tun="tn2", routes='"fd77::/64"', listen=f"[{UNDERLAY6.format(1)}]")
    r = subprocess.run([net.tool, "server", "-c", conf, "--check-config"], capture_output=True, text=True)
    assert r.returncode == 78 and "IPv6 route fd77::/64 covers the server's own address fd77::1" in r.stderr, r.stderr
    # ... where it listens on [::] the client refuses it, before the push changes anything.
    pub = net.keypair("c3")
    conf = server_config(net, "loop.toml", [("c3", pub)], port=PORT + 2, tun="tn2", routes='"fd77::/64"',
                         subnet="10.98.0.0/24", subnet6="fd00:98::/64")
    net.start("loop-server", "srv", "server", "-c", conf)
    net.wait_for("the second server's socket", lambda: "server up" in net.log("loop-server"))
    net.wait_for("c1's IPv6 address", lambda: address6(net, "c1"))
    before = host_state(net, "c1")
    client = net.start("c3", "c1", "client", "-c", client_config(net, "c3", f"[{UNDERLAY6.format(1)}]:{PORT + 2}", net.server_pub, tun="tn2"))
    assert client.wait(timeout=60) == 78, net.log("c3")
    assert "the server pushes the IPv6 route fd77::/64, which covers its own address fd77::1" in net.log("c3")
    assert host_state(net, "c1") == before
    net.stop("loop-server")


def test_a_pushed_subnet6_the_client_host_already_routes_exits_78(net):
    # The client's host has fd00:97::/64 already (here an unreachable route, as good as a LAN's):
    # taking an address there from the server would cut it off, so the client refuses the push.
    pub = net.keypair("c4")
    conf = server_config(net, "clash6.toml", [("c4", pub)], port=PORT + 3, tun="tn3", subnet="10.97.0.0/24",
                         subnet6="fd00:97::/64")
    net.start("clash6-server", "srv", "server", "-c", conf)
    net.exec("c2", "ip", "-6", "route", "add", "unreachable", "fd00:97::/64")
    try:
        net.wait_for("the third server's socket", lambda: "server up" in net.log("clash6-server"))
        net.wait_for("c2's IPv6 address", lambda: address6(net, "c2"))
        before = host_state(net, "c2")
        client = net.start("c4", "c2", "client", "-c", client_config(net, "c4", f"{net.addr['srv']}:{PORT + 3}", net.server_pub,
                                                                     tun="tn3"))
        assert client.wait(timeout=60) == 78, net.log("c4")
        assert "the server's IPv6 subnet fd00:97::/64 overlaps a network this host already routes (unreachable fd00:97::/64" \
            in net.log("c4"), net.log("c4")
        assert host_state(net, "c2") == before
    finally:
        net.exec("c2", "ip", "-6", "route", "del", "unreachable", "fd00:97::/64", check=False)
        net.stop("clash6-server")


def test_default_route_takes_ipv6_too_unless_the_server_is_reached_over_ipv6(net):
    # c2 reaches the server over IPv4: its full tunnel takes IPv6 as well (::/1 and 8000::/1), so
    # IPv6 cannot leave around the tunnel.
    net.wait_for("c2's IPv6 address", lambda: address6(net, "c2"))
    offset = len(net.log("c2"))
    client_config(net, "c2", f"{net.addr['srv']}:{PORT}", net.server_pub, extra="default_route = true")
    net.procs["c2"].send_signal(signal.SIGHUP)
    net.wait_for("c2's IPv6 full tunnel", lambda: "8000::/1 dev tn0" in net.exec("c2", "ip", "-6", "route").stdout)
    assert "::/1 dev tn0" in net.exec("c2", "ip", "-6", "route").stdout
    # c1 reaches it over IPv6: ::/0 through the tunnel would carry the tunnel itself, so the reload
    # is refused and c1 keeps its routes.
    before = net.exec("c1", "ip", "-6", "route").stdout
    offset1 = len(net.log("c1"))
    client_config(net, "c1", f"[{UNDERLAY6.format(1)}]:{PORT}", net.server_pub, extra="default_route = true")
    net.procs["c1"].send_signal(signal.SIGHUP)
    net.wait_for("c1's refused reload", lambda: "reload failed" in net.log("c1")[offset1:])
    assert "default_route = true would send all IPv6 through the tunnel" in net.log("c1")[offset1:]
    assert net.exec("c1", "ip", "-6", "route").stdout == before
    r = ping6(net, "c1", "fd00:99::1")
    assert r.returncode == 0, r.stdout + r.stderr
    # Back to the split tunnel: the halves go again.
    client_config(net, "c2", f"{net.addr['srv']}:{PORT}", net.server_pub)
    net.procs["c2"].send_signal(signal.SIGHUP)
    net.wait_for("c2's split tunnel", lambda: "8000::/1" not in net.exec("c2", "ip", "-6", "route").stdout)
    net.wait_for("c2's reload logged", lambda: "reloaded" in net.log("c2")[offset:])  # logged after the routes


def test_ipv6_config_errors_exit_78_with_location(net):
    bad = server_config(net, "bad6.toml", [], subnet6="fd00:99::/121", routes='"fd00:88::/48"')
    with open(bad, "a") as f:
        f.write('mtu = 1200\n')
    r = subprocess.run([net.tool, "server", "-c", bad, "--check-config"], capture_output=True, text=True)
    assert r.returncode == 78, r.stderr
    assert "fewer addresses than subnet 10.99.0.0/24" in r.stderr and f"{bad}:6:" in r.stderr, r.stderr  # subnet6
    assert "subnet6 needs an mtu of at least 1280" in r.stderr, r.stderr
    text = open(server_config(net, "v4only.toml", [])).read().replace('subnet6 = "fd00:99::/64"\n', "")
    net.write("v4only.toml", text)
    r = subprocess.run([net.tool, "server", "-c", net.path("v4only.toml"), "--check-config"], capture_output=True, text=True)
    assert r.returncode == 78 and "IPv6 DNS server fd00:99::1 needs subnet6" in r.stderr, r.stderr
    assert "IPv6 route fd00:88::/48 needs subnet6" in r.stderr, r.stderr
    # A subnet behind a peer that overlaps the tunnel's IPv6 subnet.
    text = open(server_config(net, "site6.toml", [("p", net.keypair("p6"))])).read()
    net.write("site6.toml", text + 'routes = ["fd00:99::8000/120"]\n')
    r = subprocess.run([net.tool, "server", "-c", net.path("site6.toml"), "--check-config"], capture_output=True, text=True)
    assert r.returncode == 78 and "route fd00:99::8000/120 overlaps the tunnel subnet fd00:99::/64" in r.stderr, r.stderr
