#!/usr/bin/python3
"""bench/watch: tn-watch's idle cost and restart latency, next to a shell rerun loop (the way tn-watch replaces).

Prints: the supervisor's CPU time over IDLE seconds with a sleeping child (target < 10 ms), its
wakeups per second while idle (context switches; target < 1), and the delay from a child's exit to
the next child's start with a zero-delay policy (median, target < 20 ms), for tn-watch and for
`while :; do child; done` in /bin/sh.
With --scale 1,10,100,500: instead, N supervised names on one host for each N (bench/watch/scale.py):
time until all are up, RSS/PSS per supervisor and per child, total idle CPU and wakeups of all
supervisors, `status` and `status --json` wall time, time to stop them all.

Usage: bench/watch/bench_watch.py [--watch PATH] [--idle SECONDS] [--restarts N]
       bench/watch/bench_watch.py --scale 1,10,100,500 [--idle SECONDS] [--parallel P]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def proc_cpu_ns(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])  # ns on CPU, far finer than utime/stime ticks


def proc_switches(pid):
    v = n = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches"):
                v = int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                n = int(line.split()[1])
    return v + n


def gaps_ms(stamp_file):
    with open(stamp_file) as f:
        events = [line.split() for line in f]
    gaps, last_exit = [], None
    for kind, ns in events:
        if kind == "start" and last_exit is not None:
            gaps.append((int(ns) - last_exit) / 1e6)
        elif kind == "exit":
            last_exit = int(ns)
    return gaps


def build_child(tmp):
    exe = os.path.join(tmp, "stamp_child")
    subprocess.run(["cc", "-O2", "-o", exe, os.path.join(HERE, "stamp_child.c")], check=True)
    return exe


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--watch", default=os.path.join(ROOT, "build", "tools", "tn-watch", "tn-watch"))
    ap.add_argument("--idle", type=float, default=60.0)
    ap.add_argument("--restarts", type=int, default=200)
    ap.add_argument("--scale", help="comma-separated N: the scale part instead (idle defaults to 30 s)")
    ap.add_argument("--parallel", type=int, default=16, help="scale: starts and stops run this many at a time")
    a = ap.parse_args()
    if not os.access(a.watch, os.X_OK):
        sys.exit(f"no tn-watch at {a.watch}: build first or pass --watch")
    if a.scale:
        import scale  # noqa: E402 (only this mode needs it)
        idle = a.idle if "--idle" in sys.argv else 30.0
        with tempfile.TemporaryDirectory(prefix="bench-watch-scale-") as tmp:
            results = scale.run(a.watch, os.path.join(tmp, "state"), [int(x) for x in a.scale.split(",")], idle,
                                a.parallel)
        print(scale.table(results))
        return

    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        env = {**os.environ, "TN_STATE_DIR": os.path.join(tmp, "state")}
        child = build_child(tmp)

        # 1. Idle: a supervisor with a sleeping child and the default policy.
        subprocess.run([a.watch, "start", "--name", "idle", "--", "sleep", "100000"], env=env, check=True)
        out = subprocess.run([a.watch, "status", "--json", "idle"], env=env, capture_output=True, text=True)
        pid = json.loads(out.stdout)["pid"]
        time.sleep(1.0)  # let start-up settle
        cpu0, sw0, t0 = proc_cpu_ns(pid), proc_switches(pid), time.monotonic()
        time.sleep(a.idle)
        cpu1, sw1, t1 = proc_cpu_ns(pid), proc_switches(pid), time.monotonic()
        subprocess.run([a.watch, "stop", "idle"], env=env, check=True, capture_output=True)
        idle_cpu_ms = (cpu1 - cpu0) / 1e6
        wakeups = (sw1 - sw0) / (t1 - t0)

        # 2. Restart latency with a zero delay: tn-watch, max-restarts ends the run after N restarts.
        stamps = os.path.join(tmp, "watch.stamps")
        subprocess.run([a.watch, "-q", "run", "--name", "lat", "--backoff-initial", "0",
                        "--policy", os.path.join(ROOT, "lua", "max-restarts.lua"),
                        "--set", f"max_restarts={a.restarts}", "--set", "restart_window=0", "--", child],
                       env={**env, "STAMP_FILE": stamps}, capture_output=True)
        watch_gaps = gaps_ms(stamps)

        # 3. The anchor: a shell loop rerunning the same child.
        sh_stamps = os.path.join(tmp, "sh.stamps")
        subprocess.run(["/bin/sh", "-c", f'i=0; while [ $i -le {a.restarts} ]; do "{child}"; i=$((i+1)); done'],
                       env={**env, "STAMP_FILE": sh_stamps}, check=True)
        sh_gaps = gaps_ms(sh_stamps)

    def q(g, p):
        return statistics.quantiles(g, n=100)[p - 1] if len(g) >= 2 else float("nan")

    print(f"idle supervisor CPU over {t1 - t0:.0f} s: {idle_cpu_ms:.3f} ms (target < 10 ms; "
          f"{cpu1 / 1e6:.3f} ms since it started, so the counter is live)")
    print(f"idle wakeups: {wakeups:.3f}/s (target < 1/s)")
    print(f"exit->restart, tn-watch zero delay: median {statistics.median(watch_gaps):.3f} ms, "
          f"p90 {q(watch_gaps, 90):.3f} ms, n={len(watch_gaps)} (target median < 20 ms)")
    print(f"exit->restart, sh rerun loop (anchor): median {statistics.median(sh_gaps):.3f} ms, "
          f"p90 {q(sh_gaps, 90):.3f} ms, n={len(sh_gaps)}")
    print(f"ratio tn-watch/sh median: {statistics.median(watch_gaps) / statistics.median(sh_gaps):.2f}")


if __name__ == "__main__":
    main()
