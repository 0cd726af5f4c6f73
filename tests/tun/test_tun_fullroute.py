"""tn-tun client's full tunnel by policy routing (issue 18), as wg-quick does it: with `[client]
fwmark`, the client's UDP socket marks its datagrams, table FWMARK holds the default routes through
the TUN, `not fwmark FWMARK lookup FWMARK` and `lookup main suppress_prefixlength 0` send everything
else there. Nothing in the main table changes, so the server's endpoint stays on the underlay without
a host route, and an IPv6 endpoint works too. Afterwards (clean exit, or SIGKILL + restart + exit)
`ip rule`, `ip -6 rule`, every routing table of both families and src_valid_mark read as before.
Where IPv4 reverse-path filtering is strict, the server's (unmarked) replies would fail the check
against the policy table: IPv4 then goes by halves, IPv6 still by policy.

    C (10.221.0.2 fd21::2) -- R -- S (10.222.0.2 fd22::2, tn-tun server) -- I (10.223.0.2 fd23::2)
The router R knows no way to I: C reaches I only through the tunnel. C's rp_filter is loose (2), as
most distributions set it; one test makes it strict.
"""
import os
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import tun_net  # noqa: E402

PORT = 51820
MARK = 29806
INTERNET, INTERNET6 = "10.223.0.2", "fd23::2"
SERVER, SERVER6 = "10.222.0.2", "fd22::2"


@pytest.fixture(scope="module")
def net():
    t = tun_net.routed("tnf", [("c", "10.221.0.2/24 fd21::2/64", "r", "10.221.0.1/24 fd21::1/64"),
                               ("r", "10.222.0.1/24 fd22::1/64", "s", f"{SERVER}/24 {SERVER6}/64"),
                               ("s", "10.223.0.1/24 fd23::1/64", "i", f"{INTERNET}/24 {INTERNET6}/64")],
                       [("c", "route", "add", "default", "via", "10.221.0.1"),
                        ("c", "-6", "route", "add", "default", "via", "fd21::1"),
                        ("s", "route", "add", "default", "via", "10.222.0.1"),
                        ("s", "-6", "route", "add", "default", "via", "fd22::1"),
                        ("r", "route", "add", "10.99.0.0/24", "via", SERVER),
                        ("i", "route", "add", "10.99.0.0/24", "via", "10.223.0.1"),
                        ("i", "-6", "route", "add", "fd00:99::/64", "via", "fd23::1")])
    with t:
        t.uplink = t.devs[0][0]
        for host in ("r", "s"):
            t.exec(host, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
        t.exec("c", "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=2", f"net.ipv4.conf.{t.uplink}.rp_filter=2")
        t.start("server", "s", "server", "-c", t.write("server.toml", f"""[server]
listen = "[::]:{PORT}"
private_key_file = "server.key"
tun = "tn0"
subnet = "10.99.0.0/24"
subnet6 = "fd00:99::/64"

[[peer]]
name = "c"
public_key = "{t.client_pub}"
"""))
        t.wait_for("the control socket", lambda: t.status())
        for host, addr in (("c", SERVER6), ("r", SERVER6), ("i", "fd23::1")):
            t.wait_for("IPv6 on the links", lambda: t.exec(host, "ping", "-6", "-c", "1", "-W", "1", addr,
                                                           check=False).returncode == 0)
        yield t


def client_config(t, server, fwmark=MARK):
    return t.write("c.toml", f"""[client]
server = "{server}"
private_key_file = "c.key"
server_public_key = "{t.server_pub}"
tun = "tnc0"
persistent_keepalive = 1
default_route = true
fwmark = {fwmark}
""")


def host(t):
    """What the client must leave as it found it."""
    state = [t.exec("c", "ip", *args).stdout for args in (["rule"], ["-6", "rule"], ["route", "show", "table", "all"],
                                                          ["-6", "route", "show", "table", "all"])]
    return state + [t.exec("c", "sysctl", "-n", "net.ipv4.conf.all.src_valid_mark").stdout]


OFFSET = {}


def start_client(t, config):
    OFFSET["c"] = len(t.log("c"))
    return t.start("c", "c", "client", "-c", config)


def connected(t):
    return t.tun_address("c", "tnc0") and "connected" in t.log("c")[OFFSET["c"]:]


def stop_client(t):
    proc = t.procs["c"]
    t.stop("c")
    assert proc.returncode == 0, t.log("c")


def check_full_tunnel(t):
    t.wait_for("c connected", lambda: connected(t))
    rules = t.exec("c", "ip", "rule").stdout
    assert f"not from all fwmark {hex(MARK)} lookup {MARK}" in rules and "suppress_prefixlength 0" in rules, rules
    assert f"lookup {MARK}" in t.exec("c", "ip", "-6", "rule").stdout
    main = t.exec("c", "ip", "route", "show", "table", "main").stdout
    assert "tnc0" not in main.replace("10.99.0.0/24 dev tnc0", ""), main  # no halves, no host route
    assert "dev tnc0" in t.exec("c", "ip", "route", "get", INTERNET).stdout
    # The tunnel's own datagrams (marked) still leave by the underlay, for both families.
    assert "via 10.221.0.1" in t.exec("c", "ip", "route", "get", SERVER, "mark", str(MARK)).stdout
    assert "via fd21::1" in t.exec("c", "ip", "-6", "route", "get", SERVER6, "mark", str(MARK)).stdout
    for addr in (INTERNET, INTERNET6):
        r = t.exec("c", "ping", "-c", "3", "-i", "0.2", "-W", "2", addr, check=False)
        assert r.returncode == 0, addr + r.stdout + r.stderr + t.log("c") + t.log("server")


def test_no_way_to_the_internet_host_without_the_tunnel(net):
    for addr in (INTERNET, INTERNET6):
        assert net.exec("c", "ping", "-c", "1", "-W", "1", addr, check=False).returncode != 0


@pytest.mark.parametrize("endpoint", [f"{SERVER}:{PORT}", f"[{SERVER6}]:{PORT}"], ids=["ipv4", "ipv6"])
def test_full_tunnel_by_policy_routing(net, endpoint):
    before = host(net)
    start_client(net, client_config(net, endpoint))
    try:
        check_full_tunnel(net)
    finally:
        stop_client(net)
    assert host(net) == before


@pytest.mark.parametrize("endpoint", [f"{SERVER}:{PORT}", f"[{SERVER6}]:{PORT}"], ids=["ipv4", "ipv6"])
def test_after_sigkill_the_next_start_removes_the_rules(net, endpoint):
    before = host(net)
    proc = start_client(net, client_config(net, endpoint))
    net.wait_for("c connected", lambda: connected(net))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    net.procs.pop("c")
    assert f"lookup {MARK}" in net.exec("c", "ip", "rule").stdout  # the rules outlive the process
    start_client(net, client_config(net, endpoint))
    try:
        check_full_tunnel(net)
        assert net.exec("c", "ip", "rule").stdout.count(f"lookup {MARK}") == 1
        assert "did not stop cleanly" in net.log("c")[OFFSET["c"]:]
    finally:
        stop_client(net)
    assert host(net) == before


def test_a_rule_the_host_has_at_the_usual_priority_is_left_alone(net):
    """A rule of the host's at 32765 (where ours go on a host without other rules): ours take the next
    free pair below main, none beside it, and leave it as it was."""
    theirs = ("from", "192.0.2.99", "lookup", "1234", "priority", "32765")
    net.exec("c", "ip", "rule", "add", *theirs)
    try:
        before = host(net)
        start_client(net, client_config(net, f"{SERVER}:{PORT}"))
        try:
            check_full_tunnel(net)
            rules = net.exec("c", "ip", "rule").stdout
            priorities = [line.split(":")[0] for line in rules.splitlines()]
            assert len(priorities) == len(set(priorities)), rules  # no rule of ours beside another
            assert "32765:\tfrom 192.0.2.99 lookup 1234" in rules, rules
        finally:
            stop_client(net)
        assert host(net) == before
    finally:
        net.exec("c", "ip", "rule", "del", *theirs)


def test_fwmark_0_routes_by_halves(net):
    before = host(net)
    start_client(net, client_config(net, f"{SERVER}:{PORT}", fwmark=0))
    try:
        net.wait_for("c connected", lambda: connected(net))
        assert "0.0.0.0/1 dev tnc0" in net.exec("c", "ip", "route").stdout
        assert "lookup" not in net.exec("c", "ip", "rule").stdout.replace("lookup local", "").replace(
            "lookup main", "").replace("lookup default", "")
        r = net.exec("c", "ping", "-c", "3", "-i", "0.2", "-W", "2", INTERNET, check=False)
        assert r.returncode == 0, r.stdout + r.stderr + net.log("c")
    finally:
        stop_client(net)
    assert host(net) == before


def test_strict_rp_filter_keeps_ipv4_on_halves(net):
    rp = [f"net.ipv4.conf.{d}.rp_filter" for d in ("all", net.uplink)]
    net.exec("c", "sysctl", "-qw", *[f"{k}=1" for k in rp])
    try:
        before = host(net)
        start_client(net, client_config(net, f"{SERVER}:{PORT}"))
        try:
            net.wait_for("c connected", lambda: connected(net))
            routes = net.exec("c", "ip", "route").stdout
            assert "0.0.0.0/1 dev tnc0" in routes and "10.222.0.2 via 10.221.0.1" in routes, routes
            assert f"lookup {MARK}" not in net.exec("c", "ip", "rule").stdout
            assert f"lookup {MARK}" in net.exec("c", "ip", "-6", "rule").stdout
            assert "strict rp_filter" in net.log("c")[OFFSET["c"]:]
            for addr in (INTERNET, INTERNET6):
                r = net.exec("c", "ping", "-c", "3", "-i", "0.2", "-W", "2", addr, check=False)
                assert r.returncode == 0, addr + r.stdout + r.stderr + net.log("c")
        finally:
            stop_client(net)
        assert host(net) == before
    finally:
        net.exec("c", "sysctl", "-qw", *[f"{k}=2" for k in rp])


@pytest.mark.parametrize("value", ["254", "-1", "4294967296", '"x"'])
def test_a_bad_fwmark_is_a_config_error(net, value):
    cfg = client_config(net, f"{SERVER}:{PORT}", fwmark=value)
    r = subprocess.run([net.tool, "client", "--check-config", "-c", cfg], capture_output=True, text=True, timeout=30)
    assert r.returncode == 78 and "fwmark" in r.stderr, r.stderr
