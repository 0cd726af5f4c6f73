"""tn-tun test topologies in network namespaces: hosts joined by veth pairs to a bridge in a hub
namespace (Topology(names)), or joined point to point (Topology(hub=False), add_ns, link); configs and
keys in a temp dir. close() (or leaving `with`) stops every process it started, by PID, before it
removes the namespaces: `ip netns del` only drops a namespace's name, and a process still in it would
live on, orphaned, in a namespace nobody can name. A Topology whose setup fails half way closes itself."""
import contextlib
import ctypes
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402
import pytest  # noqa: E402

UNDERLAY = "192.168.77.{}/24"
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """In the child before exec (`ip netns exec` keeps it through its own exec): SIGTERM when the test
    process dies, so even a SIGKILLed pytest, which runs no teardown, leaves no process behind."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def skip_unless_possible():
    """Skips the test (module) where namespaces and TUN devices cannot be made."""
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces and TUN devices")
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("no /dev/net/tun")


class Topology:
    def __init__(self, names=("srv", "c1", "c2"), hub=True):
        self.tool = harness.tool("tn-tun")
        self.dir = tempfile.mkdtemp(prefix="tn-tun-test-")
        self.procs = {}
        self.started = []  # every process spawned, also one whose name a later start() took over
        self.logs = {}
        self.ns = {}
        self.dev = {}
        self.addr = {}
        self.hub = None
        try:
            if hub:
                self.hub = harness.Netns("tnhub")
                self.hub.exec("ip", "link", "add", "br0", "type", "bridge")
                self.hub.exec("ip", "link", "set", "br0", "up")
            for i, name in enumerate(names, start=1):
                self.add_host(name, i)
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def add_ns(self, name, prefix):
        """A bare namespace called `name` here (its real name starts with `prefix`), removed on close()."""
        self.ns[name] = harness.Netns(prefix + name)
        return self.ns[name]

    def link(self, a, addr_a, b, addr_b):
        """A veth pair between namespaces `a` and `b` with the given addresses; returns (dev in a, dev in b)."""
        return harness.veth(self.ns[a], addr_a, self.ns[b], addr_b)

    def add_host(self, name, index):
        ns = self.ns[name] = harness.Netns("tn" + name)
        tag = secrets.token_hex(3)
        inner, outer = f"tvi{tag}", f"tvo{tag}"
        harness.run(["ip", "link", "add", inner, "type", "veth", "peer", "name", outer])
        harness.run(["ip", "link", "set", inner, "netns", ns.name])
        harness.run(["ip", "link", "set", outer, "netns", self.hub.name])
        self.hub.exec("ip", "link", "set", outer, "master", "br0")
        self.hub.exec("ip", "link", "set", outer, "up")
        ns.exec("ip", "addr", "add", UNDERLAY.format(index), "dev", inner)
        ns.exec("ip", "link", "set", inner, "up")
        self.ns[name], self.dev[name], self.addr[name] = ns, inner, UNDERLAY.format(index).split("/")[0]
        return ns

    def path(self, name):
        return os.path.join(self.dir, name)

    def keypair(self, name):
        priv = subprocess.run([self.tool, "keygen"], check=True, capture_output=True, text=True).stdout.strip()
        pub = subprocess.run([self.tool, "pubkey"], input=priv, check=True, capture_output=True, text=True).stdout.strip()
        with open(self.path(name + ".key"), "w") as f:
            f.write(priv + "\n")
        os.chmod(self.path(name + ".key"), 0o600)
        return pub

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)

    def exec(self, host, *cmd, check=True, timeout=120, **kw):
        return subprocess.run(["ip", "netns", "exec", self.ns[host].name, *cmd], check=check, capture_output=True,
                              text=True, timeout=timeout, **kw)

    def env(self, proc_name, extra=None):
        state = self.path("state-" + proc_name)
        os.makedirs(state, mode=0o700, exist_ok=True)  # tn-tun refuses a state dir open to others
        env = dict(os.environ, TN_STATE_DIR=state)
        env.update(extra or {})
        return env

    def spawn(self, host, *cmd, **kw):
        """Runs `cmd` in namespace `host`; close() stops it (by PID) if nothing else has."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns[host].name, *cmd], preexec_fn=_die_with_parent, **kw)
        self.started.append(proc)
        return proc

    def start(self, proc_name, host, *args, env=None):
        self.logs[proc_name] = self.path(proc_name + ".log")
        with open(self.logs[proc_name], "a") as log:
            proc = self.spawn(host, self.tool, *args, stdout=log, stderr=subprocess.STDOUT,
                              env=self.env(proc_name, env))
        self.procs[proc_name] = proc
        return proc

    def stop(self, proc_name):
        harness.stop_process(self.procs.pop(proc_name, None))

    def log(self, proc_name):
        try:
            with open(self.logs[proc_name]) as f:
                return f.read()
        except (KeyError, OSError):
            return ""

    def status(self, proc_name="server"):
        out = subprocess.run([self.tool, "status", "--json", "--tun", "tn0"], check=True, capture_output=True,
                             text=True, env=self.env(proc_name), timeout=10).stdout
        return json.loads(out)

    def client_status(self, name):
        """`tn-tun status --client --json` of the client `name` started in the namespace of that name."""
        r = self.exec(name, self.tool, "status", "--client", "--json", "--tun", "tn0", env=self.env(name))
        return json.loads(r.stdout)

    def client_config(self, name, server_pub, port, extra=""):
        """A client config for `name` (its key in name.key) to the server on host "srv": `extra` lines
        appended to [client]."""
        return self.write(name + ".toml", f"""[client]
server = "{self.addr['srv']}:{port}"
private_key_file = "{name}.key"
server_public_key = "{server_pub}"
tun = "tn0"
persistent_keepalive = 1
""" + extra)

    def wait_for(self, what, pred, timeout=20.0):
        """harness.wait_for with every process's log in the failure (a control socket not up yet, or a
        status without the field yet, is "not yet")."""
        try:
            return harness.wait_for(pred, timeout, what, errors=(subprocess.CalledProcessError, ValueError, KeyError),
                                    interval=0.1)
        except AssertionError as e:
            logs = "\n".join(f"--- {n} ---\n{self.log(n)}" for n in self.logs)
            raise AssertionError(f"{e}\n{logs}") from None

    def tun_address(self, host, dev="tn0"):
        """The device's IPv4 address/prefix once it is up (the address comes a moment before the link
        is up, and with it the route: a ping in between finds the network unreachable), else None."""
        r = self.exec(host, "ip", "-4", "-o", "addr", "show", "dev", dev, "up", check=False)
        for word in r.stdout.split():
            if "/" in word and word[0].isdigit():
                return word
        return None

    def close(self):
        """Every process first (newest first, each one even if stopping another failed or was
        interrupted), then the namespaces, then the temp dir; the first error is raised at the end."""
        error = None
        for proc in reversed(self.started):
            try:
                harness.stop_process(proc)
            except BaseException as e:  # a KeyboardInterrupt in the wait too: this one still goes
                error = error or e
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
        self.procs.clear()
        self.started.clear()
        for ns in list(self.ns.values()) + ([self.hub] if self.hub else []):
            ns.close()
        self.ns.clear()
        self.hub = None
        shutil.rmtree(self.dir, ignore_errors=True)
        if error is not None:
            raise error


def routed(prefix, links, routes=()):
    """The routed topologies of the gateway and full-tunnel tests: skips where namespaces cannot be made,
    else a Topology of bare namespaces (real names start with `prefix`) joined point to point by `links`,
    each (a, addresses of a, b, addresses of b) with "v4/len" or "v4/len v6/len" (IPv6 without DAD);
    t.devs[i] = (dev in a, dev in b) of links[i]. `routes` are (host, *`ip` arguments). Keys for
    "server" and "c" (t.server_pub, t.client_pub). Returned once no IPv6 address is tentative. Closes
    itself if any step fails."""
    skip_unless_possible()
    t = Topology(names=(), hub=False)
    try:
        t.devs = []
        for a, addrs_a, b, addrs_b in links:
            for name in (a, b):
                if name not in t.ns:
                    t.add_ns(name, prefix)
            (v4a, *v6a), (v4b, *v6b) = addrs_a.split(), addrs_b.split()
            devs = t.link(a, v4a, b, v4b)
            for host, dev, v6 in ((a, devs[0], v6a), (b, devs[1], v6b)):
                for addr in v6:
                    t.exec(host, "ip", "-6", "addr", "add", addr, "dev", dev, "nodad")
            t.devs.append(devs)
        for host, *args in routes:
            t.exec(host, "ip", *args)
        # The kernel's own link-local addresses still run duplicate address detection, and add their
        # route to table local only when it ends: a test that compares routing tables before and after
        # would see that route appear on the kernel's time, not tn-tun's (a CI failure in the full
        # tunnel test). So the topology is handed over once no address is tentative.
        for host in t.ns:
            t.wait_for(f"duplicate address detection in {host}",
                       lambda: t.exec(host, "ip", "-6", "addr", "show", "tentative").stdout.strip() == "")
        t.server_pub = t.keypair("server")
        t.client_pub = t.keypair("c")
        return t
    except BaseException:
        t.close()
        raise


def tcp_transfer(net, src, dst, dst_addr, mib=64):
    """Sends `mib` MiB of TCP from host src to dst_addr, IPv4 or IPv6 (listening in host dst); checks length
    and hash."""
    family = "AF_INET6" if ":" in dst_addr else "AF_INET"
    block = hashlib.sha256(b"tn-tun").digest() * 32768  # 1 MiB, deterministic
    expected = hashlib.sha256(block * mib).hexdigest()
    receiver = subprocess.Popen(
        ["ip", "netns", "exec", net.ns[dst].name, sys.executable, "-c",
         "import socket,hashlib\n"
         f"s=socket.socket(socket.{family});s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
         f"s.bind(('{dst_addr}',5201));s.listen(1)\n"
         "print('ready',flush=True)\n"
         "c,_=s.accept();h=hashlib.sha256();n=0\n"
         "while True:\n d=c.recv(1<<20)\n if not d: break\n h.update(d);n+=len(d)\n"
         "print(n,h.hexdigest(),flush=True)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout.readline().strip() == "ready"
        sender = ("import socket,hashlib\n"
                  "b=hashlib.sha256(b'tn-tun').digest()*32768\n"
                  f"s=socket.create_connection(('{dst_addr}',5201),timeout=30)\n"
                  f"for _ in range({mib}): s.sendall(b)\n"
                  "s.close()\n")
        net.exec(src, sys.executable, "-c", sender, timeout=300)
        out, _ = receiver.communicate(timeout=300)
        n, digest = out.split()
        assert int(n) == mib << 20
        assert digest == expected
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()


def peer(status, name):
    """The server status's entry for peer `name`."""
    return next(p for p in status["peers"] if p["name"] == name)
