"""bench/watch scale part: N supervised names on one host (issue 23), one supervisor process per name.

For each N: starts N names (`tn-watch start`, up to --parallel at a time, each child `sleep`),
then measures the time until all N are up (status --json lists N running names with a child), the
supervisors' RSS and PSS (smaps_rollup: shared library pages counted once across all of them) and
the children's, the supervisors' total CPU while idle (/proc/PID/stat utime+stime in clock ticks and
/proc/PID/schedstat in ns) with their context switches, the wall time of `tn-watch status` and
`status --json` with N names, and the time to stop them all (`tn-watch stop`, --parallel at a time).
"""
import json
import os
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

TICK = os.sysconf("SC_CLK_TCK")


def _read(path):
    with open(path) as f:
        return f.read()


def mem_kib(pid):
    """(RSS KiB, PSS KiB) of a live process."""
    rss = pss = 0
    for line in _read(f"/proc/{pid}/smaps_rollup").splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1])
        elif line.startswith("Pss:"):
            pss = int(line.split()[1])
    return rss, pss


def cpu(pid):
    """(utime+stime in ticks, ns on CPU from schedstat, context switches)."""
    fields = _read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
    sched_ns = int(_read(f"/proc/{pid}/schedstat").split()[0])
    switches = 0
    for line in _read(f"/proc/{pid}/status").splitlines():
        if "ctxt_switches" in line:
            switches += int(line.split()[1])
    return int(fields[11]) + int(fields[12]), sched_ns, switches


def status_json(watch, env):
    r = subprocess.run([watch, "status", "--json"], env=env, capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def timed(cmd, env, runs=3):
    times = []
    for _ in range(runs):
        t0 = time.monotonic()
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        times.append((time.monotonic() - t0) * 1e3)
    return statistics.median(times)


def measure(watch, env, n, names, start, idle_s, parallel, r):
    """Starts the N names and fills r with the measurements of the running set."""
    t0 = time.monotonic()
    with ThreadPoolExecutor(parallel) as ex:
        list(ex.map(start, names))
    while True:  # `start` returns once its child runs; check it from the outside too
        rows = status_json(watch, env)
        if sum(1 for x in rows if x["running"] and x["child_pid"]) == n:
            break
        time.sleep(0.05)
    r["up_s"] = time.monotonic() - t0
    sups, kids = [x["pid"] for x in rows], [x["child_pid"] for x in rows]
    time.sleep(1.0)  # let start-up settle (the last log lines, the status file)
    before = {p: cpu(p) for p in sups}
    t1 = time.monotonic()
    time.sleep(idle_s)
    after = {p: cpu(p) for p in sups}
    r["idle_s"] = time.monotonic() - t1
    r["idle_ticks"] = sum(after[p][0] - before[p][0] for p in sups)
    r["idle_cpu_ms"] = sum(after[p][1] - before[p][1] for p in sups) / 1e6
    r["idle_switches"] = sum(after[p][2] - before[p][2] for p in sups)
    sm, km = [mem_kib(p) for p in sups], [mem_kib(p) for p in kids]
    r["sup_rss_kib"], r["sup_pss_kib"] = statistics.mean(m[0] for m in sm), statistics.mean(m[1] for m in sm)
    r["kid_rss_kib"], r["kid_pss_kib"] = statistics.mean(m[0] for m in km), statistics.mean(m[1] for m in km)
    r["status_ms"] = timed([watch, "status"], env)
    r["status_json_ms"] = timed([watch, "status", "--json"], env)


def one(watch, env, n, idle_s, parallel):
    names = [f"s{i:04d}" for i in range(n)]
    r = {"n": n}

    def start(name):
        subprocess.run([watch, "-q", "start", "--name", name, "--", "sleep", "1000000"], env=env, check=True,
                       capture_output=True)

    def stop(name):
        return subprocess.run([watch, "-q", "stop", name], env=env, capture_output=True).returncode

    try:
        measure(watch, env, n, names, start, idle_s, parallel, r)
        t2 = time.monotonic()
        with ThreadPoolExecutor(parallel) as ex:
            codes = list(ex.map(stop, names))
        r["stop_s"] = time.monotonic() - t2
        if any(codes):
            raise RuntimeError(f"{sum(1 for c in codes if c)} stops failed")
        left = [x["name"] for x in status_json(watch, env) if x["running"]]
        if left:
            raise RuntimeError(f"still running after stop: {left[:5]}")
    finally:  # whatever failed, leave nothing running
        with ThreadPoolExecutor(parallel) as ex:
            list(ex.map(stop, names))
    for name in names:  # the next N starts from an empty state dir
        for ext in (".status", ".log", ".lock"):
            try:
                os.unlink(os.path.join(env["TN_STATE_DIR"], name + ext))
            except FileNotFoundError:
                pass
    return r


def table(results):
    cols = ["N", "all up s", "sup RSS/PSS KiB", "child RSS/PSS KiB", "idle CPU ms total (ticks)", "wakeups/s total",
            "status ms", "status --json ms", "stop all s"]
    lines = [" | ".join(cols)]
    for r in results:
        lines.append(" | ".join([
            str(r["n"]), f"{r['up_s']:.2f}", f"{r['sup_rss_kib']:.0f}/{r['sup_pss_kib']:.0f}",
            f"{r['kid_rss_kib']:.0f}/{r['kid_pss_kib']:.0f}",
            f"{r['idle_cpu_ms']:.3f} ({r['idle_ticks']}) over {r['idle_s']:.0f} s",
            f"{r['idle_switches'] / r['idle_s']:.2f}", f"{r['status_ms']:.1f}", f"{r['status_json_ms']:.1f}",
            f"{r['stop_s']:.2f}"]))
    return "\n".join(lines)


def run(watch, state_dir, ns, idle_s, parallel):
    env = {**os.environ, "TN_STATE_DIR": state_dir}
    results = []
    for n in ns:
        results.append(one(watch, env, n, idle_s, parallel))
        print(f"N={n}: {json.dumps(results[-1])}", flush=True)
    return results
