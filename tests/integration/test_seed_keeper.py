"""The reverse-tunnel keeper end to end, as a user sets it up: a ~/.bashrc hook and a cron line both run
`tn-watch ensure` over `tn-forward --once -R` under network.lua, for a real local user, against a real
sshd. The two environments differ the way they do on a real machine (cron: PATH=/usr/bin:/bin, no
XDG_RUNTIME_DIR, no TTY, stdin closed; the login shell: the tools on PATH, XDG_RUNTIME_DIR set), and
must still find one supervisor and one tunnel. No TN_STATE_DIR and no TN_LUA_PATH anywhere: the state
dir and the policy lookup are what a user gets."""
import concurrent.futures
import os
import random
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import harness
from harness import wait_for

WATCH = harness.tool("tn-watch")
FORWARD = harness.tool("tn-forward")
PROBE = "import socket,sys; s=socket.create_connection(('127.0.0.1',int(sys.argv[1])),timeout=2); " \
        "s.sendall(b'ping'); sys.exit(0 if s.recv(4)==b'ping' else 1)"


def procs_of(uid, exe):
    """Live (non-zombie) processes of `uid` whose argv[0] is `exe`."""
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{e}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode(errors="replace")
            owner = os.stat(f"/proc/{e}").st_uid
        except (OSError, IndexError):
            continue
        if owner == uid and state != "Z" and (argv0 == exe or os.path.basename(argv0) == os.path.basename(exe)):
            out.append(int(e))
    return out


class LocalUser:
    """The user who keeps the tunnel: a real account with its own home, key and known_hosts."""

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="tn-keeper-")
        os.chmod(self.base, 0o755)
        self.user = harness.TestUser(self.base)
        self.home = self.user.home
        os.makedirs(self.user.ssh_dir, mode=0o700)
        self.key_pub = harness.keygen(os.path.join(self.user.ssh_dir, "id_ed25519"))
        self.xdg = os.path.join(self.base, f"run-user-{self.user.uid}")
        os.makedirs(self.xdg, mode=0o700)
        self.fix_owner()

    def fix_owner(self):
        for root, dirs, files in os.walk(self.home):
            for n in [root] + [os.path.join(root, x) for x in dirs + files]:
                os.chown(n, self.user.uid, self.user.gid)
        os.chown(self.xdg, self.user.uid, self.user.gid)

    def trust(self, sshd):
        with open(os.path.join(self.user.ssh_dir, "known_hosts"), "a") as f:
            f.write(sshd.known_hosts_line())
        self.fix_owner()

    def cron_env(self):
        return {"PATH": "/usr/bin:/bin", "HOME": self.home, "LOGNAME": self.user.name, "SHELL": "/bin/sh",
                "LANG": "C.UTF-8", **harness.sanitizer_env()}

    def login_env(self):
        tools = os.pathsep.join(os.path.dirname(t) for t in (WATCH, FORWARD))
        return {"PATH": tools + ":/usr/local/bin:/usr/bin:/bin", "HOME": self.home, "USER": self.user.name,
                "LOGNAME": self.user.name, "SHELL": "/bin/bash", "TERM": "xterm-256color",
                "XDG_RUNTIME_DIR": self.xdg, "LANG": "C.UTF-8", **harness.sanitizer_env()}

    def run(self, argv, env, timeout=60):
        """As this user, in its own session (no controlling TTY), stdin closed as cron leaves it."""
        return subprocess.run(["/bin/sh", "-c", 'exec "$@" <&-', "sh", *argv], env=env, user=self.user.uid,
                              group=self.user.gid, extra_groups=[], cwd=self.home, start_new_session=True,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout)

    def close(self):
        for pid in procs_of(self.user.uid, WATCH) + procs_of(self.user.uid, FORWARD):
            os.kill(pid, signal.SIGKILL)  # only this test's throwaway user runs these
        self.user.close()
        shutil.rmtree(self.base, ignore_errors=True)


def keeper_words(sshd, host, rport, echo_port, forward):
    """The ensure line of examples/tn-watch (bashrc, crontab), pointed at the test's sshd."""
    return ["ensure", "--name", "tunnel", "--policy", "backoff.lua", "--policy", "network.lua",
            "--set", f"probe={host}:{sshd.port}", "--set", "probe_interval=1",
            "--", forward, "--once", "-p", str(sshd.port), "-R", f"{rport}:127.0.0.1:{echo_port}",
            f"{sshd.user.name}@{host}"]


def cron_line(u, words):
    return u.run([WATCH] + words, u.cron_env())


def bashrc_hook(u, words):
    line = "tn-watch " + " ".join(shlex.quote(w) for w in words)
    return u.run(["/bin/bash", "-c", line], u.login_env())


def remote_echo_ok(ns, port):
    cmd = ["/usr/bin/python3", "-c", PROBE, str(port)]
    if ns is not None:
        cmd = ["ip", "netns", "exec", ns.name] + cmd
    return subprocess.run(cmd, capture_output=True, timeout=10).returncode == 0


@pytest.fixture
def user():
    if not harness.is_root():
        pytest.skip("needs root for a test user and network namespaces")
    u = LocalUser()
    yield u
    u.close()


def test_bashrc_and_cron_keep_one_tunnel_through_a_link_loss(user, echo, netns_sshd):
    ns, host_dev, sshd = netns_sshd
    user.trust(sshd)
    sshd.user.authorize(user.key_pub)
    rport = random.randint(20000, 30000)
    cron_words = keeper_words(sshd, sshd.listen, rport, echo.port, FORWARD)
    hook_words = keeper_words(sshd, sshd.listen, rport, echo.port, "tn-forward")

    r = cron_line(user, cron_words)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: remote_echo_ok(ns, rport), timeout=60, what="the -R forward")

    # Twenty login shells at once, and cron's minute among them.
    with concurrent.futures.ThreadPoolExecutor(max_workers=21) as pool:
        runs = [pool.submit(bashrc_hook, user, hook_words) for _ in range(20)]
        runs.append(pool.submit(cron_line, user, cron_words))
        results = [f.result() for f in runs]
    assert [x.returncode for x in results] == [0] * 21, [x.stderr for x in results if x.returncode]
    supervisors = procs_of(user.user.uid, WATCH)
    assert len(supervisors) == 1, supervisors
    assert len(procs_of(user.user.uid, FORWARD)) == 1
    state = os.path.join(user.home, ".local", "state", "tn")
    assert os.path.exists(os.path.join(state, "tunnel.status"))
    assert os.listdir(user.xdg) == []  # XDG_RUNTIME_DIR plays no part
    # `sudo -u USER` (or su) may leave the caller's HOME behind: the passwd entry's home wins then.
    sudo_env = dict(user.cron_env(), HOME="/root", SUDO_USER="root")
    for env in (user.cron_env(), user.login_env(), sudo_env):
        s = user.run([WATCH, "status", "--json", "tunnel"], env)
        assert s.returncode == 0 and f'"pid":{supervisors[0]}' in s.stdout, s.stdout + s.stderr

    subprocess.run(["ip", "link", "set", host_dev, "down"], check=True)
    time.sleep(20)  # the outage itself, not a wait for a condition
    subprocess.run(["ip", "link", "set", host_dev, "up"], check=True)
    up = time.monotonic()
    wait_for(lambda: remote_echo_ok(ns, rport), timeout=120, what="the forward after the link returned")
    print(f"\n-R forward under tn-watch works again {time.monotonic() - up:.2f} s after the link returned")
    assert procs_of(user.user.uid, WATCH) == supervisors
    assert len(procs_of(user.user.uid, FORWARD)) == 1
    log = open(os.path.join(state, "tunnel.log"), errors="replace").read()
    assert "unreachable" in log and "reachable again" in log, log

    r = user.run([WATCH, "stop", "tunnel"], user.cron_env())
    assert r.returncode == 0, r.stderr
    assert procs_of(user.user.uid, WATCH) == [] and procs_of(user.user.uid, FORWARD) == []


def test_a_wrong_key_stops_the_keeper_instead_of_looping(user, echo):
    with harness.Sshd() as sshd:
        user.trust(sshd)  # the host is known, but the user's key is not authorized there
        words = keeper_words(sshd, "127.0.0.1", random.randint(20000, 30000), echo.port, FORWARD)
        r = cron_line(user, words)
        assert r.returncode == 0, r.stderr
        state = os.path.join(user.home, ".local", "state", "tn")

        def ended():
            s = user.run([WATCH, "status", "--json", "tunnel"], user.cron_env())
            return s.returncode == 1 and s.stdout

        status = wait_for(ended, timeout=60, what="the supervisor to end")
        assert '"restarts":0' in status and '"code":77' in status, status
        log = open(os.path.join(state, "tunnel.log"), errors="replace").read()
        assert "exited 77 (authentication or permission refused)" in log, log
        assert procs_of(user.user.uid, WATCH) == [] and procs_of(user.user.uid, FORWARD) == []
