"""Integration harness: a real OpenSSH sshd on a free loopback port for a throwaway user, a temp client
HOME, network namespaces with veth pairs, and processes stopped by the PID we started.

Nothing here reads or writes a real user's ~/.ssh: the server side uses a user created for the test
(home in a temp dir), the client side runs with HOME pointed at another temp dir and no agent.
"""
import contextlib
import fcntl
import hashlib
import os
import pwd
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

SOURCE_ROOT = os.environ.get("TN_SOURCE_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))


def tool(name):
    """Path of a built tool (meson passes TN_KEYSETUP=..., TN_EXEC=..., never $PATH)."""
    var = "TN_" + name.replace("tn-", "").replace("-", "_").upper()
    path = os.environ.get(var)
    if not path:
        raise RuntimeError(f"{var} is not set: run the tests through 'meson test'")
    return path


def sanitizer_env():
    """The sanitizer settings of the environment (scripts/test.sh --sanitize sets them), for tests that build
    a child's environment from nothing: without them a tool's leak report would go to a log nobody reads."""
    return {k: v for k, v in os.environ.items() if k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")}


def is_root():
    return os.geteuid() == 0


def proc_stat(pid):
    """(CPU seconds user+system, RSS KiB) of a process (the scale benches and their tests read it)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return cpu, rss


_handed_out = set()  # ports this test process was given: the kernel may offer a just-closed port again


def free_port_range(count, host="127.0.0.1"):
    """The first of `count` consecutive TCP ports free on `host` a moment ago (the base from a free
    port, tried up to 50 times), none of them given to this process before."""
    for _ in range(50):
        base = free_port(host)
        if base + count > 65535:
            continue
        socks = []
        try:
            for p in range(base, base + count):
                if p != base and p in _handed_out:
                    raise OSError(f"port {p} was handed out already")
                s = socket.socket()
                socks.append(s)
                s.bind((host, p))
            _handed_out.update(range(base, base + count))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports")


def free_port(host="127.0.0.1"):
    """A port that was free a moment ago (bind 0, read, close) and that this process was not given before:
    two calls in one test (a route's listener and its HTTP listener) must not get the same port. Another
    process's bind(0) could still take it before our tool binds it; no test has met that yet."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("the kernel keeps offering ports this test was already given")


def wait_port(port, host="127.0.0.1", timeout=10.0, proc=None):
    """Waits until something accepts on host:port; fails early if `proc` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def wait_for(pred, timeout=30.0, what="condition", errors=(), interval=0.05):
    """Polls `pred` until it returns something truthy and returns that (a test may poll; a tool may not).
    Exceptions of the types in `errors` count as "not yet" (a status socket not up yet). On timeout the
    AssertionError names `what` and the last value or exception seen."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = pred()
            if last:
                return last
        except errors as e:
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


class TcpService:
    """A TCP listener on `host` (the kernel picks the port) whose thread calls handle(conn) for each
    connection it accepts; with threaded=True each connection gets a thread of its own. `accepted`
    counts them. close() wakes the accept thread with shutdown(), waits for it, and only then closes
    the socket: closed first, its descriptor number could go to the next test's socket while the
    thread is between two accept() calls, and this thread would take that socket's connections."""

    def __init__(self, handle, host="127.0.0.1", threaded=False):
        self.accepted = 0
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._loop, args=(handle, threaded), daemon=True)
        self.thread.start()

    def _loop(self, handle, threaded):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if threaded:
                threading.Thread(target=handle, args=(c,), daemon=True).start()
            else:
                handle(c)

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.thread.join(30)
        assert not self.thread.is_alive(), "a TCP service's accept thread did not stop"
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class EchoHashServer(TcpService):
    """A TCP server on `host`: each connection gets back what it sent and, after the client's EOF, an
    EOF (half-close passes through). With digest=True it sends nothing until the client's EOF, then the
    hex SHA-256 of all it received. `accepted` counts connections, `received` bytes (a test that must
    show nothing reached the service reads it). Threads are daemons; close() stops accepting."""

    def __init__(self, digest=False, host="127.0.0.1"):
        self.digest = digest
        self.received = 0
        super().__init__(self._serve, host, threaded=True)

    def _serve(self, c):
        h = hashlib.sha256()
        with c:
            try:
                while data := c.recv(1 << 16):
                    self.received += len(data)
                    if self.digest:
                        h.update(data)
                    else:
                        c.sendall(data)
                if self.digest:
                    c.sendall(h.hexdigest().encode())
                c.shutdown(socket.SHUT_WR)
            except OSError:
                return


def stop_process(proc, grace=3.0):
    """SIGTERM the process we started (by PID), then SIGKILL after `grace`; always reaps it."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


def descendants(pid):
    """PIDs of every process below `pid` (children call setsid, so process groups do not find them)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def stop_tree(proc, grace=3.0):
    """Stops a server we started and every process it forked (sessions outlive their listener): SIGTERM
    to all, SIGKILL to what is left after `grace`. The children are found before the parent goes."""
    if proc is None:
        return
    pids = descendants(proc.pid) if proc.poll() is None else []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    stop_process(proc, grace)
    deadline = time.monotonic() + grace
    for pid in pids:
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def alive(pid):
    """True while `pid` runs (a zombie waiting for its parent does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def run(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


def keygen(path, kind="ed25519", comment="tn-test"):
    run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(path)])
    with open(str(path) + ".pub") as f:
        return f.read().strip()


class TestUser:
    """A throwaway local user whose home is a temp dir; removed on close."""

    def __init__(self, base_dir, password=None):
        self.name = "tnt" + secrets.token_hex(4)
        self.home = os.path.join(base_dir, "home-" + self.name)
        self.password = password or secrets.token_urlsafe(18)
        run(["useradd", "-M", "-d", self.home, "-s", "/bin/sh", "-K", "MAIL_DIR=/dev/null", self.name])
        os.makedirs(self.home)
        pw = pwd.getpwnam(self.name)
        os.chown(self.home, pw.pw_uid, pw.pw_gid)
        os.chmod(self.home, 0o755)
        # A set password also unlocks the account: with UsePAM no, sshd refuses locked accounts outright.
        run(["chpasswd"], input=f"{self.name}:{self.password}\n")
        self.uid, self.gid = pw.pw_uid, pw.pw_gid

    @property
    def ssh_dir(self):
        return os.path.join(self.home, ".ssh")

    @property
    def authorized_keys(self):
        return os.path.join(self.ssh_dir, "authorized_keys")

    def authorize(self, pub_line):
        os.makedirs(self.ssh_dir, exist_ok=True)
        with open(self.authorized_keys, "a") as f:
            f.write(pub_line.strip() + "\n")
        for p in (self.ssh_dir, self.authorized_keys):
            os.chown(p, self.uid, self.gid)
        os.chmod(self.ssh_dir, 0o700)
        os.chmod(self.authorized_keys, 0o600)

    def _live_processes(self):
        """PIDs of this user's processes that still run. Zombies do not count: PID 1 here reaps the
        orphaned sshd children late, and userdel would refuse for seconds over processes already gone."""
        live = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/status") as f:
                    fields = dict(line.split(":", 1) for line in f if ":" in line)
            except OSError:
                continue
            if int(fields.get("Uid", "-1 ").split()[0]) == self.uid and not fields.get("State", "").strip().startswith("Z"):
                live.append(int(pid))
        return live

    def close(self):
        # The user's processes are sshd children we started; userdel refuses while they run, so retry.
        # A session whose client sat in a network namespace that is gone never sees its peer close:
        # after a second, end what still runs as this throwaway user (nothing else can run as it).
        for attempt in range(50):
            if subprocess.run(["userdel", self.name], capture_output=True).returncode in (0, 6):
                return
            live = self._live_processes()
            if not live:
                break
            if attempt >= 10:
                for pid in live:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            time.sleep(0.1)
        subprocess.run(["userdel", "-f", self.name], capture_output=True)


class ServerFixture:
    """What the SSH server fixtures (Sshd here, dropbear_server.Dropbear) share: a temp dir holding the
    server's files and its log, one test user, and a process whose whole tree goes at close (the
    sessions too: in a network namespace, a session left behind would hold the namespace's sockets
    after the test deleted it, and keep running as root, the privileged half). A context manager."""

    dir: str
    log_path: str

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def close(self):
        stop_tree(self.proc)
        self.proc = None
        self.user.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


class Sshd(ServerFixture):
    """A real sshd on 127.0.0.1:<free port> for one test user. Use as a context manager."""

    def __init__(self, password_auth=False, extra_config="", netns=None, listen="127.0.0.1", kbdint=False):
        if not is_root():
            raise RuntimeError("Sshd needs root (to create the test user)")
        self.kbdint = kbdint  # keyboard-interactive through PAM (the password then goes only that way)
        self.dir = tempfile.mkdtemp(prefix="tn-sshd-")
        os.chmod(self.dir, 0o755)  # the test user's home lives below it
        self.password_auth = password_auth
        self.extra_config = extra_config
        self.netns = netns
        self.listen = listen
        self.user = TestUser(self.dir)
        self.host_key = os.path.join(self.dir, "host_ed25519")
        keygen(self.host_key, comment="tn-test-host")
        self.port = None
        self.proc = None
        self.log_path = os.path.join(self.dir, "sshd.log")
        os.makedirs("/run/sshd", exist_ok=True)

    @property
    def host_pub(self):
        with open(self.host_key + ".pub") as f:
            return " ".join(f.read().split()[:2])

    def known_hosts_line(self):
        return f"[{self.listen}]:{self.port} {self.host_pub}\n"

    def regenerate_host_key(self):
        os.unlink(self.host_key)
        os.unlink(self.host_key + ".pub")
        keygen(self.host_key, comment="tn-test-host-2")

    def _config(self):
        return f"""ListenAddress {self.listen}
Port {self.port}
HostKey {self.host_key}
PidFile {self.dir}/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
StrictModes no
UsePAM {"yes" if self.kbdint else "no"}
PubkeyAuthentication yes
PasswordAuthentication {"yes" if self.password_auth and not self.kbdint else "no"}
KbdInteractiveAuthentication {"yes" if self.kbdint else "no"}
PermitRootLogin no
AllowUsers {self.user.name}
AllowTcpForwarding yes
GatewayPorts no
MaxStartups 200:30:400
MaxSessions 200
MaxAuthTries 10
LogLevel VERBOSE
Subsystem sftp internal-sftp
{self.extra_config}
"""

    def start(self, port=None):
        for attempt in range(5):
            self.port = port or free_port()
            cfg = os.path.join(self.dir, "sshd_config")
            with open(cfg, "w") as f:
                f.write(self._config())
            run(["/usr/sbin/sshd", "-t", "-f", cfg])
            cmd = ["/usr/sbin/sshd", "-D", "-e", "-f", cfg]
            if self.netns:
                cmd = ["ip", "netns", "exec", self.netns] + cmd
            log = open(self.log_path, "a")
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            log.close()
            try:
                if self.netns:
                    wait_netns_port(self.netns, self.listen, self.port, proc=self.proc)
                else:
                    wait_port(self.port, self.listen, proc=self.proc)
                return self
            except RuntimeError:
                if port is not None or attempt == 4:
                    raise RuntimeError("sshd did not start:\n" + self.log())
        return self

    def stop(self):
        stop_process(self.proc)
        self.proc = None

    def kill_all(self):
        """Kills sshd and every session process it forked (a crash or a reboot of the server)."""
        if self.proc is None:
            return
        pids = descendants(self.proc.pid)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def restart(self):
        self.stop()
        return self.start(port=self.port)



def wait_netns_port(ns, host, port, timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        r = subprocess.run(["ip", "netns", "exec", ns, "bash", "-c", f"exec 3<>/dev/tcp/{host}/{port}"],
                           capture_output=True)
        if r.returncode == 0:
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} in netns {ns}")


class ClientHome:
    """A temp HOME for the client side, with its own ~/.ssh, and the environment to run tools in."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tn-home-")
        self.ssh_dir = os.path.join(self.dir, ".ssh")
        os.makedirs(self.ssh_dir, mode=0o700)
        self.state_dir = os.path.join(self.dir, "state")

    @property
    def known_hosts(self):
        return os.path.join(self.ssh_dir, "known_hosts")

    def trust(self, sshd):
        with open(self.known_hosts, "a") as f:
            f.write(sshd.known_hosts_line())

    def key(self, name="id_ed25519", kind="ed25519"):
        """Makes ~/.ssh/<name> and returns its public line."""
        return keygen(os.path.join(self.ssh_dir, name), kind)

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SSH_")}
        env.update(HOME=self.dir, TN_STATE_DIR=self.state_dir, LC_ALL="C.UTF-8")
        env.update(extra)
        return env

    def run(self, cmd, input=None, timeout=60, **kw):
        return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                              env=self.env(), stdin=None if input is not None else subprocess.DEVNULL, **kw)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Netns:
    """A network namespace we create and always delete, with helpers for veth links."""

    def __init__(self, prefix="tn"):
        self.name = f"{prefix}{secrets.token_hex(3)}"
        run(["ip", "netns", "add", self.name])
        self.exec("ip", "link", "set", "lo", "up")

    def exec(self, *cmd, check=True):
        return run(["ip", "netns", "exec", self.name, *cmd], check=check)

    def close(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def veth(ns_a, addr_a, ns_b, addr_b):
    """Connects two namespaces (None = the host's) with a veth pair and addresses like '10.9.0.1/24'.
    Returns (name_a, name_b)."""
    tag = secrets.token_hex(3)
    a, b = f"tva{tag}", f"tvb{tag}"
    run(["ip", "link", "add", a, "type", "veth", "peer", "name", b])
    for dev, ns, addr in ((a, ns_a, addr_a), (b, ns_b, addr_b)):
        if ns is not None:
            run(["ip", "link", "set", dev, "netns", ns.name])
            ns.exec("ip", "addr", "add", addr, "dev", dev)
            ns.exec("ip", "link", "set", dev, "up")
        else:
            run(["ip", "addr", "add", addr, "dev", dev])
            run(["ip", "link", "set", dev, "up"])
    return a, b


@contextlib.contextmanager
def _host_address_lock():
    """Serialises choosing and adding host addresses between test processes. It locks this file (opened
    read-only), so nothing is left behind in /tmp."""
    with open(__file__) as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def netns_sshd(prefix="tnssh", subnet="10.231"):
    """A real sshd in a network namespace of its own, reached from the host over a veth pair
    (SUBNET.N.1 here, SUBNET.N.2 there, N random among those no other test holds). Yields (namespace,
    host-side device, sshd); setting the device down cuts the link. On exit sshd and every session it
    forked stop first, then the namespace and the link go: a session left in a deleted namespace would
    never see its peer close."""
    ns = Netns(prefix)
    host_dev = None
    sshd = None
    try:
        with _host_address_lock():  # two tests at once must not both take SUBNET.N on the host
            used = run(["ip", "-4", "-o", "addr", "show"]).stdout
            net = random.choice([n for n in range(10, 251) if f" {subnet}.{n}." not in used])
            host_dev, _ = veth(None, f"{subnet}.{net}.1/24", ns, f"{subnet}.{net}.2/24")
        sshd = Sshd(netns=ns.name, listen=f"{subnet}.{net}.2")
        sshd.start()
        yield ns, host_dev, sshd
    finally:
        if sshd is not None:
            sshd.close()
        ns.close()
        if host_dev is not None:
            subprocess.run(["ip", "link", "del", host_dev], capture_output=True)
