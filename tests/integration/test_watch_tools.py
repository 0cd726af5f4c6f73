"""tn-watch over each long-running tool of the kit (tn-forward --once, tn-route, tn-vnet, tn-tun server and
client), the real binaries: a child killed with SIGKILL comes back by itself, and after `tn-watch stop`
nothing is left: no process of the child's group, no held lock, no listening control socket, no TUN
device. A zombie counts as gone (PID 1 here reaps late)."""
import contextlib
import fcntl
import fnmatch
import glob
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile

import pytest

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "relay"))
sys.path.insert(0, os.path.join(HERE, "..", "tun"))

WATCH = harness.tool("tn-watch")


def wait_for(pred, timeout=60.0, what="condition"):
    """harness.wait_for, where a status socket or file that is not there yet counts as "not yet"."""
    return harness.wait_for(pred, timeout, what, errors=(OSError, ValueError, KeyError, subprocess.SubprocessError))


def live_in_group(pgid):
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(e))
    return out


alive = harness.alive


def held_locks(state, pattern="*"):
    held = []
    for path in glob.glob(os.path.join(state, pattern + ".lock")):
        with open(path) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f, fcntl.LOCK_UN)
            except BlockingIOError:
                held.append(path)
    return held


def listening_sockets(state, pattern="*"):
    """Unix sockets bound under `state` that something still listens on (/proc/net/unix)."""
    out = []
    with open("/proc/net/unix") as f:
        for line in f.read().splitlines()[1:]:
            parts = line.split()
            if (len(parts) >= 8 and parts[5] == "01"  # 01: listening
                    and fnmatch.fnmatch(parts[7], os.path.join(state, pattern + ".sock"))):
                out.append(parts[7])
    return out


class Watch:
    """One tn-watch supervisor over `command`, sharing the tool's state dir."""

    def __init__(self, state, name, command, env=None, own="*"):
        """`own`: the glob of the tool's files in `state` (other tools of the test may share it)."""
        self.state, self.name, self.own = state, name, own
        self.env = dict(env or os.environ, TN_STATE_DIR=state)
        r = self.run("start", "--name", name, "--backoff-initial", "0.1", "--backoff-max", "1", "--", *command)
        assert r.returncode == 0, r.stderr
        self.started = True

    def run(self, *args):
        return subprocess.run([WATCH, *args], capture_output=True, text=True, env=self.env, timeout=60)

    def status(self):
        return json.loads(self.run("status", "--json", self.name).stdout)

    def log(self):
        with contextlib.suppress(OSError), open(os.path.join(self.state, self.name + ".log"), errors="replace") as f:
            return f.read()
        return ""

    def kill_child_and_wait_back(self, ready):
        """SIGKILL the running child; returns once a new child runs and `ready()` holds again."""
        wait_for(ready, what=f"{self.name} ready\n{self.log()}")
        old = wait_for(lambda: self.status()["child_pid"], what="a child")
        os.kill(old, signal.SIGKILL)
        new = wait_for(lambda: (self.status()["child_pid"] or old) != old and self.status()["child_pid"],
                       what=f"a new child\n{self.log()}")
        wait_for(ready, what=f"{self.name} ready again\n{self.log()}")
        assert self.status()["restarts"] >= 1
        return new

    def stop_and_check_nothing_left(self):
        s = self.status()
        sup, child = s["pid"], s["child_pid"]
        r = self.run("stop", self.name)
        self.started = False
        assert r.returncode == 0, r.stderr
        assert not alive(sup)
        if child:
            assert live_in_group(child) == [], self.log()
        assert held_locks(self.state, self.own) == [] and held_locks(self.state, self.name) == []
        assert listening_sockets(self.state, self.own) == []

    def close(self):
        if self.started:
            with contextlib.suppress(Exception):
                self.run("stop", "--timeout", "20", self.name)


@pytest.fixture
def state():
    d = tempfile.mkdtemp(prefix="tn-watch-tools-")
    yield os.path.join(d, "state")
    subprocess.run(["rm", "-rf", d])


def need_root():
    if not harness.is_root():
        pytest.skip("needs root (test users, namespaces, TUN)")


def test_tn_forward_once(state):
    need_root()
    client = harness.ClientHome()
    try:
        with harness.Sshd() as sshd:
            client.trust(sshd)
            sshd.user.authorize(client.key())
            rport = random.randint(20000, 30000)
            cmd = [harness.tool("tn-forward"), "--once", "-p", str(sshd.port), "-R", f"{rport}:127.0.0.1:9",
                   f"{sshd.user.name}@127.0.0.1"]
            w = Watch(state, "fwd", cmd, env=client.env())
            try:
                def ready():
                    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", rport), 1):
                        return True
                    return False
                w.kill_child_and_wait_back(ready)
                w.stop_and_check_nothing_left()
                wait_for(lambda: not ready(), what="the remote listener gone with the tunnel")
            finally:
                w.close()
    finally:
        client.close()


@pytest.fixture
def relay():
    need_root()
    import relay_env
    r = relay_env.Relay(tls=False)
    yield r
    r.close()


def test_tn_route(relay):
    import relay_env
    cfg = relay.route_config()
    w = Watch(relay.state, "route", [relay_env.ROUTE, "-c", cfg])
    try:
        w.kill_child_and_wait_back(lambda: relay.status() is not None)
        w.stop_and_check_nothing_left()
    finally:
        w.close()


def test_tn_vnet(relay):
    import relay_env
    relay.start_route()
    cfg = relay.vnet_config("a")
    w = Watch(relay.state, "vnet", [relay_env.VNET, "-c", cfg], own="tn-vnet-*")
    try:
        w.kill_child_and_wait_back(lambda: relay.ctl_json("a", "show", "vnet")["connected"])
        w.stop_and_check_nothing_left()
    finally:
        w.close()


@pytest.fixture
def tun():
    need_root()
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("no /dev/net/tun")
    import test_tun
    import tun_net
    t = tun_net.Topology(names=("srv", "c1"))
    try:
        t.server_pub = t.keypair("server")
        t.server_conf = test_tun.server_config(t, [("c1", t.keypair("c1"))])
        t.client_conf = test_tun.client_config(t, "c1", t.server_pub)
        yield t
    finally:
        t.close()


def tun_in(t, host):
    return subprocess.run(["ip", "netns", "exec", t.ns[host].name, "ip", "link", "show", "dev", "tn0"],
                          capture_output=True).returncode == 0


def test_tn_tun_server(tun, state):
    cmd = ["ip", "netns", "exec", tun.ns["srv"].name, tun.tool, "server", "-c", tun.server_conf]
    w = Watch(state, "tunsrv", cmd)
    try:
        w.kill_child_and_wait_back(lambda: tun_in(tun, "srv"))
        w.stop_and_check_nothing_left()
        assert not tun_in(tun, "srv")
    finally:
        w.close()


def test_tn_tun_client(tun, state):
    tun.start("server", "srv", "server", "-c", tun.server_conf)
    tun.wait_for("the server's control socket", lambda: tun.status())
    cmd = ["ip", "netns", "exec", tun.ns["c1"].name, tun.tool, "client", "-c", tun.client_conf]
    w = Watch(state, "tuncli", cmd)
    try:
        w.kill_child_and_wait_back(lambda: tun.tun_address("c1") is not None)
        w.stop_and_check_nothing_left()
        assert not tun_in(tun, "c1")
    finally:
        w.close()
