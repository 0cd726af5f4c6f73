"""Helpers for the tn-watch integration tests: a private state dir, the binary, and process queries."""
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402

WATCH = harness.tool("tn-watch")
LUA = os.path.join(harness.SOURCE_ROOT, "lua")
EXAMPLES = os.path.join(harness.SOURCE_ROOT, "examples/tn-watch")


def wait_for(pred, timeout=15.0, what="condition"):
    return harness.wait_for(pred, timeout, what, interval=0.02)


def proc_stat(pid):
    """(state, ppid, pgid) of a live /proc entry, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1]), int(fields[2])
    except (OSError, IndexError, ValueError):
        return None


def pids_in_group(pgid):
    out = []
    for e in os.listdir("/proc"):
        if e.isdigit():
            st = proc_stat(int(e))
            if st and st[2] == pgid and st[0] != "Z":
                out.append(int(e))
    return out


def zombie_children(ppid):
    out = []
    for e in os.listdir("/proc"):
        if e.isdigit():
            st = proc_stat(int(e))
            if st and st[1] == ppid and st[0] == "Z":
                out.append(int(e))
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


class State:
    """A temp state dir; every name started through it is stopped at the end, even on failure."""

    def __init__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="tn-watch-test-")
        self.dir = os.path.join(self._tmp.name, "state")
        self.env = {**os.environ, "TN_STATE_DIR": self.dir, "TN_LUA_PATH": LUA}
        self.names = set()
        self.procs = []

    def path(self, *parts):
        return os.path.join(self._tmp.name, *parts)

    def watch(self, *args, check=False, timeout=30):
        r = subprocess.run([WATCH, *args], capture_output=True, text=True, env=self.env, timeout=timeout)
        if check:
            assert r.returncode == 0, f"tn-watch {' '.join(args)} -> {r.returncode}\n{r.stderr}"
        return r

    def start(self, name, *args, command):
        self.names.add(name)
        return self.watch("start", "--name", name, *args, "--", *command, check=True)

    def popen(self, *args, **kw):
        p = subprocess.Popen([WATCH, *args], env=self.env, **kw)
        self.procs.append(p)
        return p

    def status(self, name):
        r = self.watch("status", "--json", name)
        assert r.returncode in (0, 1), r.stderr
        return json.loads(r.stdout)

    def log(self, name):
        try:
            with open(os.path.join(self.dir, name + ".log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, name, needle, timeout=15.0):
        return wait_for(lambda: needle in self.log(name), timeout, f"{needle!r} in {name}.log")

    def close(self):
        for p in self.procs:
            harness.stop_process(p)
        for n in self.names:
            with contextlib.suppress(Exception):
                st = self.status(n)
                self.watch("stop", "--timeout", "20", n)
                # A failed stop must not leave the test's processes behind: kill what we can prove is ours.
                sup, child = st.get("pid"), st.get("child_pid")
                if sup and any(WATCH.encode() in a for a in cmdline(sup)):
                    os.kill(sup, signal.SIGKILL)
                if child and proc_stat(child) and proc_stat(child)[2] == child:
                    os.killpg(child, signal.SIGKILL)
        self._tmp.cleanup()
