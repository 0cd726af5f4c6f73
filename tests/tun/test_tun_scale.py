"""One tn-tun server, many peers (issue 23, the small CI version of bench/tun/scale.py): 50 simulated
clients from one process (bench/tun's tn-tun-peers, lib/tun's ClientCore, each its own key and UDP
source port) against the real server in a network namespace. All must handshake, every one must get
an echo answered through the server's TUN, and status --json must list each of them connected with
its traffic counted. Waits on conditions only; no timing bound."""
import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import tun_net  # noqa: E402

N = 50
PORT = 51820


def peers_tool():
    path = os.path.join(os.environ.get("TN_BUILD_ROOT", ""), "bench", "tun", "tn-tun-peers")
    if not os.path.exists(path):
        pytest.skip(f"{path} is not built")
    return path


@pytest.fixture(scope="module")
def net():
    tun_net.skip_unless_possible()
    tool = peers_tool()
    t = tun_net.Topology(names=(), hub=False)
    try:
        t.add_ns("srv", "tnsc")
        t.add_ns("sw", "tnsc")
        t.link("srv", "192.168.79.1/24", "sw", "192.168.79.2/24")
        lines = subprocess.run([tool, "keys", str(N)], check=True, capture_output=True, text=True).stdout.split("\n")
        pairs = [line.split() for line in lines if line]
        assert len(pairs) == N
        t.keys = t.write("peers.keys", "".join(priv + "\n" for priv, _ in pairs))
        t.server_pub = t.keypair("server")
        conf = ('[server]\nlisten = "192.168.79.1:%d"\nprivate_key_file = "server.key"\ntun = "tn0"\n'
                'subnet = "10.77.0.0/24"\n' % PORT)
        conf += "".join(f'\n[[peer]]\nname = "p{i}"\npublic_key = "{pub}"\n' for i, (_, pub) in enumerate(pairs))
        t.start("server", "srv", "server", "-c", t.write("server.toml", conf))
        t.wait_for("the control socket", lambda: t.status())
        t.peers_tool = tool
        yield t
    finally:
        t.close()


def test_fifty_peers_handshake_exchange_and_are_listed(net):
    # The steady phase runs until every peer had an echo answered; 600 s is only a limit for a hung run.
    r = subprocess.run(["ip", "netns", "exec", net.ns["sw"].name, net.peers_tool, "run", "--server",
                        f"192.168.79.1:{PORT}", "--server-key", net.server_pub, "--keys", net.keys, "--bind",
                        "192.168.79.2", "--connect-timeout", "600", "--rate", "2", "--steady-seconds", "600",
                        "--until-replied", "--flood-seconds", "0", "--size", "200"],
                       capture_output=True, text=True, timeout=1300)
    phases = {p["phase"]: p for p in map(json.loads, r.stdout.splitlines())}
    assert r.returncode == 0, (r.stdout, r.stderr, net.log("server"))
    assert phases["connect"]["connected"] == N
    assert phases["steady"]["peers_replied"] == N, phases["steady"]
    st = net.status()
    assert len(st["peers"]) == N
    addresses = set()
    for p in st["peers"]:
        assert p["connected"] and p["handshakes"] >= 1, p
        assert p["rx_packets"] >= 1 and p["tx_packets"] >= 1, p  # its echo in, the reply out
        addresses.add(p["address"])
        assert p["endpoint"].startswith("192.168.79.2:"), p
    assert len(addresses) == N  # each its own tunnel address
    assert len({p["endpoint"] for p in st["peers"]}) == N  # and its own source port
    assert net.procs["server"].poll() is None, net.log("server")


def tun_link(net):
    return json.loads(subprocess.run(["ip", "-n", net.ns["srv"].name, "-s", "-j", "link", "show", "tn0"],
                                     check=True, capture_output=True, text=True).stdout)[0]


def test_server_tun_queue_holds_what_one_turn_writes(net):
    # server_runner.cpp's tun_txqueuelen: 256 packets a turn + one receive of 32 GRO trains of 64.
    assert tun_link(net)["txqlen"] == 256 + 32 * 64


def test_a_thousand_echoes_in_flight_are_not_dropped_at_the_tun(net):
    # 1,000 echoes in flight (20 per peer): each reply waits in the server's TUN queue until the
    # server reads it, so a queue of the kernel's 500 could drop some; one deeper than the window
    # cannot, however the turns fall.
    dropped = tun_link(net)["stats64"]["tx"]["dropped"]
    r = subprocess.run(["ip", "netns", "exec", net.ns["sw"].name, net.peers_tool, "run", "--server",
                        f"192.168.79.1:{PORT}", "--server-key", net.server_pub, "--keys", net.keys, "--bind",
                        "192.168.79.2", "--connect-timeout", "600", "--steady-seconds", "0", "--window", "1000",
                        "--flood-seconds", "1", "--size", "1000"], capture_output=True, text=True, timeout=1300)
    assert r.returncode == 0, (r.stdout, r.stderr, net.log("server"))
    flood = [p for p in map(json.loads, r.stdout.splitlines()) if p["phase"] == "flood"][0]
    assert flood["replies"] > 0, flood
    assert tun_link(net)["stats64"]["tx"]["dropped"] == dropped
