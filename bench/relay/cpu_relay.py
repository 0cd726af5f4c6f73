#!/usr/bin/python3
"""bench/relay/cpu_relay.py: CPU, context switches and throughput per GiB of the sealed chain, per process.

Sends `iperf3 -n BYTES` through tn's sealed use->route->serve chain (one chain per BUILD_DIR given, so two
builds can be compared A/B in one run) and through `ssh -L` with aes128-gcm (when root), in alternating
rounds, and prints for every relay process utime/stime seconds and voluntary/involuntary context switches
per GiB, read from /proc before and after each transfer.

Usage (as root, for the throwaway sshd user):
  /usr/bin/python3 bench/relay/cpu_relay.py BUILD_DIR [BUILD_DIR2 ...] [--rounds 3] [--bytes 2G] [--tls false]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_relay  # noqa: E402
from bench_relay import harness  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def stat(pid):
    """(utime s, stime s, voluntary, involuntary) of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    ut, st = int(v[11]) / TICK, int(v[12]) / TICK
    vol = inv = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches"):
                vol = int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                inv = int(line.split()[1])
    return ut, st, vol, inv


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            kids = []
        out += kids
        todo += kids
    return out


def transfer(port, nbytes, usage=None):
    """iperf3 -n through `port`: (Gbit/s, GiB). `usage` gets the client's (ut, st, vol, inv)."""
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-n", nbytes, "-J"], stdout=out,
                             stderr=subprocess.DEVNULL)
        _, _, ru = os.wait4(p.pid, 0)
        p.returncode = 0
        if usage is not None:
            usage += [ru.ru_utime, ru.ru_stime, ru.ru_nvcsw, ru.ru_nivcsw]
        out.seek(0)
        try:
            j = json.loads(out.read())["end"]
            return j["sum_received"]["bits_per_second"] / 1e9, j["sum_received"]["bytes"] / 2**30
        except (ValueError, KeyError):
            return float("nan"), float("nan")


def out_segs():
    """TCP segments sent by the whole machine (data and ACKs; other users of the machine add noise)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    return int(rows[1][rows[0].index("OutSegs")])


def measure(port, procs, nbytes):
    """procs: [(name, pid)]. Returns (Gbit/s, {name: (ut, st, vol, inv) per GiB}, TCP segments per GiB)."""
    before = [stat(p) for _, p in procs]
    segs = out_segs()
    client = []
    gbit, gib = transfer(port, nbytes, client)
    segs = (out_segs() - segs) / gib
    after = [stat(p) for _, p in procs]
    out = {}
    for (n, _), b, e in zip(procs, before, after):  # processes of one name (sshd's) are summed
        out[n] = tuple(o + (x - y) / gib for o, x, y in zip(out.get(n, (0, 0, 0, 0)), e, b))
    out["iperf3 -c"] = tuple(x / gib for x in client)
    return gbit, out, segs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("builds", nargs="+")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bytes", default="2G")
    ap.add_argument("--tls", default="true")
    ap.add_argument("--no-ssh", action="store_true")
    ap.add_argument("--strace", help="count syscalls (strace -c) of every relay process during one more transfer into this folder")
    ap.add_argument("--perf", help="record `perf -g` of every relay process during one more transfer into this folder")
    a = ap.parse_args()
    bench_relay.raise_nofile()
    tls = a.tls == "true"
    worlds = []
    for b in a.builds:  # BUILD_DIR[:VAR=value,VAR=value]: environment of that chain's relays (A/B of a knob)
        path, _, env = b.partition(":")
        worlds.append(bench_relay.World(os.path.abspath(path)))
        worlds[-1].env.update(kv.split("=", 1) for kv in env.split(",") if kv)
    sshd = client = None
    try:
        iport = harness.free_port()
        ip = worlds[0].spawn(["iperf3", "-s", "-p", str(iport)], "iperf3")
        harness.wait_port(iport, proc=ip)
        sides = []  # (label, port, [(name, pid)])
        for i, w in enumerate(worlds):
            _, uport, _, _ = w.tn_chain(iport, tls=tls)
            route, serve, use = w.procs[-3:]
            sides.append((f"tn{i}" if len(worlds) > 1 else "tn",
                          uport, [("use-vnet", use.pid), ("route", route.pid), ("serve-vnet", serve.pid)]))
        if harness.is_root() and not a.no_ssh:
            sshd = harness.Sshd().start()
            client = harness.ClientHome()
            sshd.user.authorize(client.key())
            client.trust(sshd)
            sport = worlds[0].ssh_l(sshd, client, iport)
            ssh = worlds[0].procs[-1]
            transfer(sport, "1M")  # opens the forwarded channel so sshd's session processes exist
            sides.append(("ssh-L", sport, [("ssh", ssh.pid)] + [("sshd", p) for p in descendants(sshd.proc.pid)]))
        sides = [(label, port, procs + [("iperf3 -s", ip.pid)]) for label, port, procs in sides]
        for label, port, _ in sides:
            transfer(port, "64M")  # warm-up: pools, pipes, buffers
        if a.perf:
            os.makedirs(a.perf, exist_ok=True)
            for label, port, procs in sides:
                recs = [subprocess.Popen(["perf", "record", "-q", "-F", "1999", "-g", "-p", str(pid), "-o",
                                          os.path.join(a.perf, f"{label}-{n}-{pid}.data")],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for n, pid in procs]
                import time
                time.sleep(1)
                transfer(port, a.bytes)
                for rec in recs:
                    rec.send_signal(2)
                    rec.wait()
        if a.strace:
            os.makedirs(a.strace, exist_ok=True)
            for label, port, procs in sides:
                recs = [subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o",
                                          os.path.join(a.strace, f"{label}-{n}-{pid}.txt")],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for n, pid in procs]
                import time
                time.sleep(1)
                transfer(port, a.bytes)
                for rec in recs:
                    rec.send_signal(2)
                    rec.wait()
        res = {label: [] for label, _, _ in sides}
        for r in range(a.rounds):
            order = sides if r % 2 == 0 else list(reversed(sides))
            for label, port, procs in order:
                res[label].append(measure(port, procs, a.bytes))
            print(f"  round {r + 1}: " + ", ".join(f"{label} {res[label][-1][0]:.2f} Gbit/s" for label, _, _ in sides), flush=True)
        print(f"== per GiB ({a.bytes} per transfer, {a.rounds} rounds, medians; CPU s user+sys, ctxt switches vol/invol) ==")
        for label, _, procs in sides:
            rows = res[label]
            names = list(dict.fromkeys([n for n, _ in procs] + ["iperf3 -c", "iperf3 -s"]))
            gb = bench_relay.median([x[0] for x in rows])
            relays = [{n: v for n, v in x[1].items() if not n.startswith("iperf3")} for x in rows]
            tot = bench_relay.median([sum(v[0] + v[1] for v in r.values()) for r in relays])
            print(f"{label:6s} {gb:5.2f} Gbit/s (rounds {', '.join(f'{x[0]:.2f}' for x in rows)})  CPU {tot:.2f} s/GiB "
                  f"(relays; rounds {', '.join(f'{sum(v[0] + v[1] for v in r.values()):.2f}' for r in relays)})  "
                  f"TCP segments sent {bench_relay.median([x[2] for x in rows]):.0f}/GiB")
            for n in names:
                agg = [x[1][n] for x in rows]
                ut, st, vol, inv = (bench_relay.median([g[k] for g in agg]) for k in range(4))
                print(f"    {n:11s} user {ut:5.2f}  sys {st:5.2f}  ctxt vol {vol:8.0f}  invol {inv:7.0f}")
        if len(sides) > 1:
            base = sides[-1][0] if sides[-1][0] == "ssh-L" else sides[0][0]
            for label, _, _ in sides:
                if label != base:
                    rr = [x[0] / y[0] for x, y in zip(res[label], res[base])]
                    print(f"{label} / {base} throughput per round: {', '.join(f'{v:.2f}' for v in rr)}  median {bench_relay.median(rr):.2f}")
    finally:
        for w in worlds:
            w.close()
        if client:
            client.close()
        if sshd:
            sshd.close()


if __name__ == "__main__":
    main()
