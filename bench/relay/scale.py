#!/usr/bin/python3
"""bench/relay/scale.py: one tn-route, N vnets and M idle proxied connections (issue 23;
bench/relay/SCALE.md says what each column means and what limits it). For each N: a fresh tn-route on
loopback (TLS on), tn-route-agents (N simulated vnets from one process on lib/relay's code) against
it; then M idle connections through the route's remote_ports (the generator holds both ends); then
the route killed and started again on the same port, and the time until every vnet is registered again.
Usage: bench/relay/scale.py [--n 1,10,100,1000,10000] [--conns 0,0,1000,10000,100000] [--build build]
[--idle-seconds 10] [--json]"""
import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "integration"))
from harness import free_port, free_port_range, proc_stat  # noqa: E402

TOKEN = "bench-relay-token-0123456789"
PER_GROUP = 50       # the route allows 64 vnets per group
CONNS_PER_SERVE = 1000


def raise_nofile(want=1 << 20):
    """As many descriptors as the kernel allows (root may raise the hard limit up to fs.nr_open)."""
    try:
        with open("/proc/sys/fs/nr_open") as f:
            want = min(want, int(f.read()))
    except OSError:
        pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Agents:
    """tn-route-agents with its JSON counter lines read on a thread; `last` is the newest."""

    def __init__(self, cmd, env):
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.last = {}
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            try:
                self.last = json.loads(line)
                self.lines.append(self.last)
            except ValueError:
                pass

    def wait(self, cond, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.p.poll() is not None:
                raise RuntimeError(f"tn-route-agents exited with {self.p.returncode}")
            if self.last and cond(self.last):
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            self.p.wait()


class Route:
    def __init__(self, build, n, serving):
        self.remote_base = free_port_range(serving)
        self.bin = os.path.join(build, "tools/tn-route/tn-route")
        self.dir = tempfile.mkdtemp(prefix="tn-relay-scale-")
        self.env = dict(os.environ, TN_STATE_DIR=os.path.join(self.dir, "state"))
        self.port = free_port()
        self.cfg = os.path.join(self.dir, "route.toml")
        text = f'[route]\nlisten = "127.0.0.1:{self.port}"\ntls = true\n'
        for g in range(max(1, (n + PER_GROUP - 1) // PER_GROUP)):
            text += f'\n[[group]]\nname = "s{g}"\ntoken = "{TOKEN}"\nports = ["{self.remote_base}-{self.remote_base + max(serving, 1) - 1}"]\n'
        with open(self.cfg, "w") as f:
            f.write(text)
        os.chmod(self.cfg, 0o600)
        self.token_file = os.path.join(self.dir, "token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")
        r = subprocess.run([self.bin, "-q", "-c", self.cfg, "fingerprint"], capture_output=True, text=True, env=self.env, check=True)
        self.fingerprint = r.stdout.strip()
        self.p = None

    def start(self):
        self.p = subprocess.Popen([self.bin, "-q", "-c", self.cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("tn-route did not listen")

    def kill(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()

    def status(self, *extra):
        t = time.monotonic()
        r = subprocess.run([self.bin, "status", "--json", "-c", self.cfg, *extra], capture_output=True, text=True, env=self.env, timeout=120)
        ms = (time.monotonic() - t) * 1000
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        return ms, len(r.stdout), json.loads(r.stdout)

    def close(self):
        if self.p and self.p.poll() is None:
            self.p.terminate()
            self.p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def measure(build, n, m, idle_seconds):
    serving = max(1, min(n, (m + CONNS_PER_SERVE - 1) // CONNS_PER_SERVE))
    route = Route(build, n, serving)
    row = {"N": n, "M": m}
    agents = None
    try:
        route.start()
        time.sleep(0.5)
        _, rss0 = proc_stat(route.p.pid)
        gen = os.path.join(build, "bench/relay/tn-route-agents")
        agents = Agents([gen, "--route", f"127.0.0.1:{route.port}", "--fingerprint", route.fingerprint, "--token-file", route.token_file,
                         "--vnets", str(n), "--per-group", str(PER_GROUP), "--serving", str(serving), "--remote-port", str(route.remote_base),
                         "--conns", str(m), "--stats-ms", "200"], route.env)
        t0 = time.monotonic()
        if not agents.wait(lambda s: s["registered"] == n, 300):
            raise RuntimeError(f"only {agents.last.get('registered')} of {n} vnets registered")
        row["reg_s"] = round(time.monotonic() - t0, 2)
        # The route's CPU for the N registrations (utime+stime: robust to other load on the machine).
        row["reg_cpu_s"] = round(proc_stat(route.p.pid)[0], 2)
        time.sleep(1)
        cpu0, rss1 = proc_stat(route.p.pid)
        row["rss_B_vnet"] = round((rss1 - rss0) * 1024 / n)
        hb0 = agents.last["heartbeats"]
        time.sleep(idle_seconds)
        cpu1, _ = proc_stat(route.p.pid)
        row["idle_cpu_pct"] = round((cpu1 - cpu0) / idle_seconds * 100, 2)
        row["pings_per_s"] = round((agents.last["heartbeats"] - hb0) / idle_seconds)
        times = [route.status()[0] for _ in range(3)]
        ms, size, doc = route.status()
        row["status_ms"] = round(statistics.median(times + [ms]))
        row["status_KiB"] = round(size / 1024)
        row["status_vnets"] = len(doc["vnets"])
        if m:
            agents.p.send_signal(signal.SIGUSR1)
            t1 = time.monotonic()
            agents.wait(lambda s: s["links_ok"] + s["links_failed"] + s["clients_failed"] + s["clients_closed"] >= m, 900)
            row["conn_s"] = round(time.monotonic() - t1, 2)
            row["links_ok"] = agents.last["links_ok"]
            row["conn_failed"] = agents.last["links_failed"] + agents.last["clients_failed"] + agents.last["clients_closed"]
            time.sleep(1)
            _, rss2 = proc_stat(route.p.pid)
            row["rss_B_conn"] = round((rss2 - rss1) * 1024 / max(1, row["links_ok"]))
            ms, size, doc = route.status()
            row["status_ms_conns"] = round(ms)
            row["active"] = doc["links"]["active"]
        # A route restart: killed, started again on the same port; every vnet reconnects with
        # tn-vnet's own backoff (relay::reconnect_backoff()).
        route.kill()
        agents.wait(lambda s: s["registered"] == 0, 60)
        t2 = time.monotonic()
        before = len(agents.lines)
        failed_before = agents.last["failures"]
        route.start()
        ok = agents.wait(lambda s: s["registered"] == n, 300)
        row["restart_s"] = round(time.monotonic() - t2, 2) if ok else None
        # The new route's CPU until all were back: registrations plus the refused or failed attempts.
        row["restart_cpu_s"] = round(proc_stat(route.p.pid)[0], 2)
        row["restart_failures"] = agents.last["failures"] - failed_before
        row["peak_attempts_100ms"] = max([l["peak_attempts_100ms"] for l in agents.lines[before:]] or [0])
        row["failures"] = agents.last["failures"]
    finally:
        if agents:
            agents.stop()
        route.close()
    return row


COLUMNS = ["N", "M", "reg_s", "rss_B_vnet", "idle_cpu_pct", "pings_per_s", "status_ms", "status_KiB", "status_vnets", "conn_s", "links_ok",
           "conn_failed", "rss_B_conn", "status_ms_conns", "reg_cpu_s", "restart_s", "restart_cpu_s", "peak_attempts_100ms",
           "restart_failures", "failures"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", default="1,10,100,1000,10000")
    ap.add_argument("--conns", default="0,0,1000,10000,100000", help="M for each N, in the same order")
    ap.add_argument("--build", default="build")
    ap.add_argument("--idle-seconds", type=float, default=10)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    ns = [int(x) for x in a.n.split(",")]
    ms = [int(x) for x in a.conns.split(",")]
    ms += [ms[-1]] * (len(ns) - len(ms))
    nofile = raise_nofile()
    print(f"# RLIMIT_NOFILE {nofile} (route and generator inherit it)", file=sys.stderr)
    rows = []
    for n, m in zip(ns, ms):
        rows.append(measure(a.build, n, m, a.idle_seconds))
        print(json.dumps(rows[-1]), file=sys.stderr)
    if a.json:
        print(json.dumps(rows))
        return
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for r in rows:
        print("| " + " | ".join("-" if r.get(c) is None else str(r[c]) for c in COLUMNS) + " |")


if __name__ == "__main__":
    main()
