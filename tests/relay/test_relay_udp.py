"""UDP serves and uses (type = "udp") end to end on loopback: a real route, two real vnets, real UDP
services. Datagrams stay datagrams; DNS through a use; a flood of sources over udp_max_flows is
dropped and counted while an open flow goes on; idle flows expire; a TCP/UDP mismatch is refused.
The same through a UDP remote_port, where the route is the using end."""
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from relay_env import wait_for, ROUTE, VNET, relay  # noqa: E402,F401,F811
import harness  # noqa: E402


class UdpEcho:
    """A UDP service on loopback: echoes each datagram; with `answer`, replies answer(data) instead."""

    def __init__(self, answer=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer = answer or (lambda d: d)
        self.sources = set()
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while True:
            data, src = self.sock.recvfrom(65535)
            if self.stopping:
                return
            self.sources.add(src)
            reply = self.answer(data)
            if reply is not None:
                self.sock.sendto(reply, src)

    def close(self):
        """Stops the thread, then closes the socket. Closing first would free the descriptor while
        the thread waits in recvfrom on it: the next test's socket gets that number, and this thread
        takes (and fails to answer) that socket's datagrams. It did: a lost DNS query, a lost echo."""
        self.stopping = True
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as wake:
            wake.sendto(b"", ("127.0.0.1", self.port))
        self.thread.join(30)
        assert not self.thread.is_alive(), "the UDP service thread did not stop"
        self.sock.close()


def dig_short(port, name):
    """`dig +short` for NAME's A record through 127.0.0.1:PORT: (its last line, as a list, and all it
    printed). UDP: dig retries a query that went unanswered and says so on stdout (";; communications
    error ... timed out"), so the answer is its last line. Seen once under CI load."""
    r = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), name, "A", "+short", "+tries=5"],
                       capture_output=True, text=True, timeout=120)
    return r.stdout.strip().splitlines()[-1:], r.stdout + r.stderr


def dns_answer(query):
    """A DNS responder for one name: svc.example.test A 192.0.2.7 (RFC 1035 wire format, by hand)."""
    qid, flags, qd = struct.unpack(">HHH", query[:6])
    at, labels = 12, []
    while query[at]:
        labels.append(query[at + 1:at + 1 + query[at]].decode())
        at += 1 + query[at]
    question = query[12:at + 5]
    name = ".".join(labels).lower()
    found = name == "svc.example.test"
    head = struct.pack(">HHHHHH", qid, 0x8180 if found else 0x8183, 1, 1 if found else 0, 0, 0)
    answer = struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + bytes([192, 0, 2, 7]) if found else b""
    return head + question + answer


def dns_query(name, qid=0x4242):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", 1, 1)


def start_pair(relay, service_port, use_extra=None, serve_type="udp", use_type="udp"):
    """A route, vnet 'home' serving id 701 (service_port), vnet 'office' using it on a free UDP port."""
    relay.start_route()
    use_port = harness.free_port()  # a free TCP port; UDP on loopback is as free in practice, checked by attach
    relay.start_vnet("home", serves=[{"name": "svc", "id": 701, "type": serve_type, "port": service_port}])
    use = {"name": "svc", "id": 701, "type": use_type, "port": use_port}
    use.update(use_extra or {})
    relay.start_vnet("office", uses=[use])
    relay.wait_connected("home")
    relay.wait_connected("office")
    return use_port


def udp_client(timeout=20):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(timeout)
    return s


def use_udp(relay):
    return relay.ctl_json("office", "show", "use")[0]["udp"]


def test_udp_echo_keeps_datagrams_whole_and_apart(relay):
    echo = UdpEcho()
    try:
        port = start_pair(relay, echo.port)
        relay.wait_use("office", "svc")
        c = udp_client()
        sizes = [1, 0, 1400, 9000, 65507]
        sent = [bytes((i * 7 + n) % 256 for i in range(n)) for n in sizes]
        # All go out before any is read: each must come back as one datagram of its own size.
        for d in sent:
            c.sendto(d, ("127.0.0.1", port))
        got = [c.recvfrom(65535)[0] for _ in sent]
        assert sorted(got) == sorted(sent)
        assert [len(g) for g in got] == sizes  # one flow, one link: in order too
        u = use_udp(relay)
        assert u["flows"] == 1 and u["flows_total"] == 1 and u["dropped"] == 0
        # The serve's side: one link, one connected socket, so the service saw one source.
        assert len(echo.sources) == 1
        c.close()
    finally:
        echo.close()


def test_dns_query_through_a_use(relay):
    dns = UdpEcho(answer=dns_answer)
    try:
        port = start_pair(relay, dns.port)
        relay.wait_use("office", "svc")
        c = udp_client()
        c.sendto(dns_query("svc.example.test"), ("127.0.0.1", port))
        reply = c.recvfrom(65535)[0]
        assert reply[:2] == b"\x42\x42" and reply[-4:] == bytes([192, 0, 2, 7])
        c.close()
        if shutil.which("dig"):
            answer, printed = dig_short(port, "svc.example.test")
            assert answer == ["192.0.2.7"], printed
            r = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "nope.example.test", "A", "+tries=5"],
                               capture_output=True, text=True, timeout=120)
            assert "status: NXDOMAIN" in r.stdout, r.stdout + r.stderr
    finally:
        dns.close()


def test_a_flood_of_sources_is_capped_counted_and_does_not_stop_an_open_flow(relay):
    echo = UdpEcho()
    try:
        port = start_pair(relay, echo.port, {"udp_max_flows": 8})
        relay.wait_use("office", "svc")
        keeper = udp_client()
        keeper.sendto(b"before", ("127.0.0.1", port))
        assert keeper.recvfrom(100)[0] == b"before"
        flood = []
        # 300 source ports, one datagram each, in batches of 20 that the use must have counted before
        # the next goes: the kernel drops what overflows a busy receiver's buffer, and every one of
        # these must reach the use to be counted. 7 fit beside the keeper; the other 293 are dropped.
        for batch in range(15):
            for i in range(20):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind(("127.0.0.1", 0))
                s.sendto(b"flood %d" % (batch * 20 + i), ("127.0.0.1", port))
                flood.append(s)
            seen = 1 + 20 * (batch + 1)
            wait_for(lambda: (lambda u: u["flows_total"] + u["dropped"] == seen)(use_udp(relay)), 30,
                     f"{seen} sources counted (a flow or a drop each)")
        assert use_udp(relay)["dropped"] == 293
        u = use_udp(relay)
        assert u["flows"] == 8 and u["flows_total"] == 8
        for i in range(20):
            keeper.sendto(b"after %d" % i, ("127.0.0.1", port))
            assert keeper.recvfrom(100)[0] == b"after %d" % i
        # The flood's first datagram is counted even when the packet is a new source's only one.
        assert use_udp(relay)["dropped"] == 293
        for s in flood:
            s.close()
        keeper.close()
        assert relay.procs["office"].poll() is None and relay.procs["home"].poll() is None
    finally:
        echo.close()


def test_idle_flows_expire_and_their_links_close(relay):
    echo = UdpEcho()
    try:
        port = start_pair(relay, echo.port, {"udp_idle_timeout": 1})
        relay.wait_use("office", "svc")
        c = udp_client()
        c.sendto(b"one", ("127.0.0.1", port))
        assert c.recvfrom(100)[0] == b"one"
        wait_for(lambda: use_udp(relay)["expired"] == 1, 30, "the idle flow expired")
        assert use_udp(relay)["flows"] == 0
        # Its link closed at both ends: the serving vnet's socket for it too.
        wait_for(lambda: relay.ctl_json("home", "show", "serve")[0]["links"] == 0, 30, "the serve's link closed")
        wait_for(lambda: relay.ctl_json("office", "show", "use")[0]["links"] == 0, 30, "the use's link closed")
        # Both ends sent their EOF record: a clean end at the route, not a link cut short.
        assert "closed: truncated" not in relay.log("route") and "protocol error" not in relay.log("route")
        # The same source again: a new flow, and it works.
        c.sendto(b"two", ("127.0.0.1", port))
        assert c.recvfrom(100)[0] == b"two"
        assert use_udp(relay)["flows_total"] == 2
        c.close()
    finally:
        echo.close()


def test_a_udp_use_of_a_tcp_serve_is_refused_with_what_to_change(relay):
    echo = UdpEcho()
    try:
        start_pair(relay, echo.port, serve_type="tcp")
        def refused():
            for x in relay.ctl_json("office", "show", "use"):
                if "is type tcp" in x["state"]:
                    return x
            return None
        u = wait_for(refused, 15, "the use refused")
        assert "this use is type udp" in u["state"] and 'set type = "tcp"' in u["state"]
        assert "is type tcp, this use is type udp" in relay.log("office")
    finally:
        echo.close()


@pytest.mark.parametrize("table,line,message", [
    ('[[serve]]\nname = "a"\nport = 53\ntype = "quic"\n', 'type', 'type must be "tcp" or "udp"'),
    ('[[serve]]\nname = "a"\nport = 53\ntype = "udp"\ncustom_domains = ["a.example.test"]\n', 'custom_domains',
     "a udp serve has no custom_domains"),
    ('[[use]]\nid = 5\nport = 53\nudp_max_flows = 10\n', 'udp_max_flows', 'only a use with type = "udp" has flows'),
    ('[[use]]\nid = 5\nport = 53\ntype = "udp"\nudp_max_flows = 0\n', 'udp_max_flows', ""),
])
def test_udp_config_errors(tmp_path, table, line, message):
    cfg = tmp_path / "v.toml"
    cfg.write_text('[route]\naddress = "127.0.0.1:1"\ntoken = "x"\ntls = false\n\n' + table)
    r = subprocess.run([VNET, "--check-config", "-c", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 78, r.stderr
    assert message in r.stderr
    assert f"{cfg}:" in r.stderr


def test_quick_start_serve_and_use_with_type_udp(relay):
    """`tn-vnet serve|use --type udp` without a file, as `frpc udp` would be run."""
    echo = UdpEcho()
    try:
        relay.start_route()
        token = os.path.join(relay.dir, "token")
        with open(token, "w") as f:
            f.write("test-token-0123456789\n")
        os.chmod(token, 0o600)
        common = ["--route", f"127.0.0.1:{relay.port}", "--token-file", token, "--fingerprint", relay.fingerprint,
                  "--group", "g", "--id", "760", "--type", "udp"]
        port = harness.free_port()
        relay.spawn("serve-760", [VNET, "serve", *common, "--port", str(echo.port)])
        relay.spawn("use-760", [VNET, "use", *common, "--port", str(port)])
        relay.wait_use("use-760", "use-760")
        c = udp_client()
        c.sendto(b"quick", ("127.0.0.1", port))
        assert c.recvfrom(100)[0] == b"quick"
        c.close()
        r = subprocess.run([VNET, "serve", *common, "--port", "53", "--domain", "a.example.test"], capture_output=True, text=True,
                           env=relay.env(), timeout=30)
        assert r.returncode == 64 and "a udp serve has none" in r.stderr
    finally:
        echo.close()


def test_reload_applies_a_changed_flow_limit(relay):
    """ctl reload with a new udp_max_flows reopens the use with it (and its flows start over)."""
    echo = UdpEcho()
    try:
        port = start_pair(relay, echo.port, {"udp_max_flows": 4})
        relay.wait_use("office", "svc")
        assert use_udp(relay)["max_flows"] == 4
        path = os.path.join(relay.dir, "office.toml")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("udp_max_flows = 4", "udp_max_flows = 9"))
        relay.ctl("office", "reload")
        wait_for(lambda: use_udp(relay)["max_flows"] == 9 and relay.ctl_json("office", "show", "use")[0]["state"] == "attached",
                 15, "the use reopened with the new limit")
        c = udp_client()
        c.sendto(b"again", ("127.0.0.1", port))
        assert c.recvfrom(100)[0] == b"again"
        c.close()
    finally:
        echo.close()


# ---- UDP remote_ports: the route listens on UDP and is the using end of each flow's link ----

def route_keys(relay, lines):
    """Puts `lines` into the route's [route] table (Relay writes the rest of route.toml)."""
    write = relay.route_config

    def patched(path=None):
        path = write(path)
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("[route]\n", "[route]\n" + lines, 1))
        return path
    relay.route_config = patched


def start_remote(relay, service_port, route_lines=""):
    """A route (with `route_lines` in [route]) and vnet 'home' serving udp id 702 on a UDP remote_port."""
    route_keys(relay, route_lines)
    relay.start_route()
    port = harness.free_port()
    relay.start_vnet("home", serves=[{"name": "svc", "id": 702, "type": "udp", "port": service_port, "remote_port": port}])
    relay.wait_serve("home", "svc")
    return port


def udp_remote(relay, port):
    found = [u for u in relay.status()["udp_remote_ports"] if u["port"] == port]
    return found[0] if found else None


def test_udp_remote_port_echo_and_dns(relay):
    echo, dns = UdpEcho(), UdpEcho(answer=dns_answer)
    try:
        port = start_remote(relay, echo.port)
        relay.start_vnet("dnsv", serves=[{"name": "dns", "id": 703, "type": "udp", "port": dns.port,
                                          "remote_port": (dport := harness.free_port())}])
        relay.wait_serve("dnsv", "dns")
        c = udp_client()
        sizes = [1, 0, 1400, 9000, 65507]
        sent = [bytes((i * 5 + n) % 256 for i in range(n)) for n in sizes]
        for d in sent:
            c.sendto(d, ("127.0.0.1", port))
        got = [c.recvfrom(65535)[0] for _ in sent]
        assert [len(g) for g in got] == sizes and got == sent  # one flow, one link: whole, apart, in order
        u = udp_remote(relay, port)
        assert u["flows"] == 1 and u["flows_total"] == 1 and u["dropped"] == 0 and u["serve"] == 702
        # No TCP listener for a udp serve: the port is only in the UDP list.
        assert port not in relay.status()["remote_ports"]
        c.sendto(dns_query("svc.example.test"), ("127.0.0.1", dport))
        reply = c.recvfrom(65535)[0]
        assert reply[:2] == b"\x42\x42" and reply[-4:] == bytes([192, 0, 2, 7])
        c.close()
        if shutil.which("dig"):
            answer, printed = dig_short(dport, "svc.example.test")
            assert answer == ["192.0.2.7"], printed
        # The serve's traffic counts the datagrams' bytes both ways once the flows are open.
        total = sum(sizes)
        serves = {s["id"]: s for v in relay.status()["vnets"] if v["name"] == "home" for s in v["serves"]}
        t = serves[702]["traffic"]
        assert t["bytes_in"] == total and t["bytes_out"] == total, t
    finally:
        echo.close()
        dns.close()


def test_udp_remote_port_flood_is_capped_counted_and_an_open_flow_goes_on(relay):
    echo = UdpEcho()
    try:
        dash = harness.free_port()
        relay.route_extra = f'\n[dashboard]\nlisten = "127.0.0.1:{dash}"\n'
        port = start_remote(relay, echo.port, "udp_max_flows = 8\n")
        keeper = udp_client()
        keeper.sendto(b"before", ("127.0.0.1", port))
        assert keeper.recvfrom(100)[0] == b"before"
        flood = []
        # As for a use: batches the route must have counted before the next goes (see above).
        for batch in range(10):
            for i in range(20):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind(("127.0.0.1", 0))
                s.sendto(b"flood", ("127.0.0.1", port))
                flood.append(s)
            seen = 1 + 20 * (batch + 1)
            wait_for(lambda: (lambda u: u["flows_total"] + u["dropped"] == seen)(udp_remote(relay, port)), 30,
                     f"{seen} sources counted (a flow or a drop each)")
        u = udp_remote(relay, port)
        assert u["dropped"] == 193 and u["flows_total"] == 8 and u["flows"] == 8
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{dash}/metrics", timeout=10).read().decode()
        assert f'tn_route_udp_dropped_total{{port="{port}"}} 193\n' in metrics
        assert f'tn_route_udp_flows{{port="{port}"}} 8\n' in metrics
        text = subprocess.run([ROUTE, "status", "-c", os.path.join(relay.dir, "route.toml")], capture_output=True, text=True,
                              env=relay.env(), timeout=10).stdout
        assert f"remote_port {port}  flows 8/8  dropped 193" in text, text
        for i in range(20):
            keeper.sendto(b"after %d" % i, ("127.0.0.1", port))
            assert keeper.recvfrom(100)[0] == b"after %d" % i
        for s in flood:
            s.close()
        keeper.close()
        assert relay.procs["route"].poll() is None
    finally:
        echo.close()


def test_udp_remote_port_idle_flows_expire(relay):
    echo = UdpEcho()
    try:
        port = start_remote(relay, echo.port, "udp_idle_timeout = 1\n")
        c = udp_client()
        c.sendto(b"one", ("127.0.0.1", port))
        assert c.recvfrom(100)[0] == b"one"
        wait_for(lambda: udp_remote(relay, port)["expired"] == 1, 30, "the idle flow expired")
        assert udp_remote(relay, port)["flows"] == 0
        wait_for(lambda: relay.ctl_json("home", "show", "serve")[0]["links"] == 0, 30, "the serve's link closed")
        c.sendto(b"two", ("127.0.0.1", port))
        assert c.recvfrom(100)[0] == b"two"
        assert udp_remote(relay, port)["flows_total"] == 2
        c.close()
    finally:
        echo.close()


def test_udp_remote_port_outside_the_group_ports_is_refused(relay):
    echo = UdpEcho()
    try:
        allowed = harness.free_port()
        relay.claims = {"g": f"ports = [{allowed}]\n"}
        relay.start_route()
        other = allowed + 1 if allowed < 65535 else allowed - 1
        relay.start_vnet("home", serves=[{"name": "bad", "type": "udp", "port": echo.port, "remote_port": other},
                                         {"name": "ok", "type": "udp", "port": echo.port, "remote_port": allowed}])
        relay.wait_serve("home", "ok")

        def state():
            for s in relay.ctl_json("home", "show", "serve"):
                if s["name"] == "bad" and s["state"].startswith("refused"):
                    return s["state"]
            return None
        st = wait_for(state, 20, "the serve outside the ports refused")
        assert f"remote_port {other} is not in group 'g' ports" in st, st
        assert [u["port"] for u in relay.status()["udp_remote_ports"]] == [allowed]
    finally:
        echo.close()


def test_udp_remote_port_closes_when_its_serve_goes(relay):
    echo = UdpEcho()
    try:
        port = start_remote(relay, echo.port)
        c = udp_client()
        c.sendto(b"up", ("127.0.0.1", port))
        assert c.recvfrom(100)[0] == b"up"
        relay.stop("home")
        wait_for(lambda: udp_remote(relay, port) is None, 30, "the UDP remote_port closed")
        # The port is free again: the route no longer holds the socket.
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", port))
        s.close()
        c.close()
        assert "udp remote_port %d closed" % port in relay.log("route")
    finally:
        echo.close()


def test_ctl_serve_and_use_new_with_type_udp(relay):
    """`ctl serve run ... --type udp` and `ctl use run ... --type udp` on running vnets carry datagrams."""
    echo = UdpEcho()
    try:
        relay.start_route()
        relay.start_vnet("home")
        relay.start_vnet("office")
        relay.wait_connected("home")
        relay.wait_connected("office")
        relay.ctl("home", "serve", "run", "svc", str(echo.port), "704", "--type", "udp")
        relay.wait_serve("home", "svc")
        assert relay.ctl_json("home", "show", "serve")[0]["type"] == "udp"
        port = harness.free_port()
        relay.ctl("office", "use", "run", "svc", "704", str(port), "--type", "udp")
        u = relay.wait_use("office", "svc")
        assert u["type"] == "udp" and u["udp"]["max_flows"] == 256
        c = udp_client()
        c.sendto(b"via ctl", ("127.0.0.1", port))
        assert c.recvfrom(100)[0] == b"via ctl"
        c.close()
        # A bad type, or --type on a command that creates nothing: usage (64), nothing created.
        r = relay.ctl("office", "use", "new", "other", "704", "--type", "quic", check=False)
        assert r.returncode == 64 and "--type must be tcp or udp" in r.stdout + r.stderr
        r = relay.ctl("office", "show", "use", "--type", "udp", check=False)
        assert r.returncode == 64 and "--type belongs to serve|use new|run" in r.stdout + r.stderr
        assert [x["name"] for x in relay.ctl_json("office", "show", "use")] == ["svc"]
    finally:
        echo.close()
