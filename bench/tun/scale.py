#!/usr/bin/python3
"""bench/tun/scale.py: one tn-tun server, N peers (issue 23; bench/tun/SCALE.md says what each column
means and what limits it). For each N: a fresh server in a network namespace with N peers configured,
tn-tun-peers (N simulated clients from one process, lib/tun's ClientCore) in a second namespace joined
by a veth pair. Measures the handshakes (wall time and the server's CPU), the server's RSS per peer
beyond its config, `tn-tun status --json` time, the RTT of a steady echo load, and the echo
throughput of a flood whose total window is the same for every N, as a ratio to N=1. The anchor, for
the same N in the same run: wireguard-go with N peers, driven by wg_peers.py (N simulated WireGuard
initiators in one process; scale_wg.py), then a table of tn-tun / wireguard-go ratios.
--cipher: what the simulated clients offer (auto, the default: AES-256-GCM where this CPU has AES-NI,
as a real client does; aes; chacha); the server is at its default (it chooses AES-256-GCM when offered
and its CPU has AES-NI). wireguard-go always uses ChaCha20-Poly1305.
Usage (root): bench/tun/scale.py [--n 1,10,100,1000] [--build build] [--seconds 5] [--rate 10]
[--window W] [--size 1000] [--cipher auto|aes|chacha] [--no-wg] [--json]"""
import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "integration"))
from harness import proc_stat  # noqa: E402

SRV_IP, PORT = "10.200.0.1", 51820
SW_BASE = "10.200.1."  # the simulated peers' addresses: SW_BASE + 1 .. SW_BASE + 250, in turn
MAX_ADDRESSES = 250


def sh(*cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


class Net:
    """Two namespaces joined by a veth pair; removed on close()."""

    def __init__(self, addresses):
        tag = secrets.token_hex(3)
        self.srv, self.sw = f"tnss{tag}", f"tnsw{tag}"
        for ns in (self.srv, self.sw):
            sh("ip", "netns", "add", ns)
            self.ns(ns, "ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", "sva" + tag, "type", "veth", "peer", "name", "svb" + tag)
        for dev, ns, ips in (("sva" + tag, self.srv, [SRV_IP]),
                             ("svb" + tag, self.sw, [SW_BASE + str(i) for i in range(1, addresses + 1)])):
            sh("ip", "link", "set", dev, "netns", ns)
            sh("ip", "-n", ns, "-batch", "-", input="".join(f"addr add {ip}/16 dev {dev}\n" for ip in ips))
            self.ns(ns, "ip", "link", "set", dev, "up")
        # The server host answers every echo: no ICMP rate limit in the way (its own namespace only).
        self.ns(self.srv, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", check=False)
        self.ns(self.srv, "sysctl", "-qw", "net.ipv4.icmp_msgs_per_sec=10000000", check=False)

    def ns(self, ns, *cmd, check=True, **kw):
        return sh("ip", "netns", "exec", ns, *cmd, check=check, **kw)

    def close(self):
        for ns in (self.srv, self.sw):
            sh("ip", "netns", "del", ns, check=False)


def subnet_for(n):
    prefix = 24
    while (1 << (32 - prefix)) < n + 3:
        prefix -= 1
    return f"10.76.0.0/{prefix}"


def udp_rcvbuf_errors(net, which):
    """Datagrams a full socket receive buffer dropped in that namespace so far (where loss happened)."""
    lines = [l.split() for l in net.ns(getattr(net, which), "cat", "/proc/net/snmp").stdout.splitlines()
             if l.startswith("Udp:")]
    return int(dict(zip(lines[0][1:], lines[1][1:]))["RcvbufErrors"])


def status_ms(a, env, n):
    """Median wall time of `tn-tun status --json` over 5 calls (the process start included: what a
    script sees), after checking it lists all n peers."""
    times = []
    for _ in range(5):
        t0 = time.monotonic()
        out = sh(a.tn_tun, "status", "--json", "--tun", "tnsc0", env=env).stdout
        times.append((time.monotonic() - t0) * 1e3)
        if len(json.loads(out)["peers"]) != n:
            raise RuntimeError("status --json does not list every peer")
    return statistics.median(times)


def follow(a, gen, srv_pid, cpu0, rss0, r, status=None):
    """Reads a generator's JSON phase lines (tn-tun-peers or wg_peers.py) into r, with the server's CPU
    and RSS at each phase (cpu0, rss0: before the generator started); status(), if given, is timed
    under the steady load."""
    n = r["n"]
    for line in gen.stdout:
        p = json.loads(line)
        gen_cpu = proc_stat(gen.pid)[0]
        if p["phase"] == "connect":
            cpu1, _ = proc_stat(srv_pid)
            r["cpu_at_connect"], r["gen_cpu_at_connect"] = cpu1, gen_cpu
            r["connect"] = p
            r["server_cpu_ms_per_handshake"] = (cpu1 - cpu0) * 1e3 / max(1, p["connected"])
            # Measured while the steady load runs: a status under traffic, the RSS with every session up.
            time.sleep(min(1.0, a.seconds / 3))
            if status:
                r["status_ms"] = status()
            r["rss_per_peer_bytes"] = (proc_stat(srv_pid)[1] - rss0) * 1024 / n
            r["rss0_kib"] = rss0
        else:
            r[p["phase"]] = p
            # The flood starts as the steady phase ends: the server's CPU between the two lines.
            cpu = proc_stat(srv_pid)[0]
            if p["phase"] == "flood" and "cpu_at_steady" in r:
                r["server_cpu_us_per_echo"] = (cpu - r["cpu_at_steady"]) * 1e6 / max(1, p["replies"])
                # A generator near 100% is the flood's limit, not the server (wg_peers.py is Python).
                r["server_cpu_pct_flood"] = (cpu - r["cpu_at_steady"]) * 100 / p["seconds"]
                r["gen_cpu_pct_flood"] = (gen_cpu - r["gen_cpu_at_steady"]) * 100 / p["seconds"]
            if p["phase"] == "steady":
                # Who is the bottleneck: % of one core each used while the steady load ran.
                r["server_cpu_pct_steady"] = (cpu - r["cpu_at_connect"]) * 100 / p["seconds"]
                r["gen_cpu_pct_steady"] = (gen_cpu - r["gen_cpu_at_connect"]) * 100 / p["seconds"]
            r["cpu_at_steady"], r["gen_cpu_at_steady"] = cpu, gen_cpu


def one(a, net, n, work):
    """Runs one N; returns a dict of measurements."""
    pairs = [l.split() for l in sh(a.peers, "keys", str(n)).stdout.splitlines() if l]
    keys = os.path.join(work, "peers.keys")
    with open(keys, "w") as f:
        f.writelines(p[0] + "\n" for p in pairs)
    spriv = sh(a.tn_tun, "keygen").stdout.strip()
    spub = sh(a.tn_tun, "pubkey", input=spriv).stdout.strip()
    with open(os.path.join(work, "server.key"), "w") as f:
        f.write(spriv + "\n")
    os.chmod(os.path.join(work, "server.key"), 0o600)
    conf = (f'[server]\nlisten = "{SRV_IP}:{PORT}"\nprivate_key_file = "server.key"\ntun = "tnsc0"\n'
            f'subnet = "{subnet_for(n)}"\nmtu = 1420\n')
    conf += "".join(f'\n[[peer]]\nname = "p{i}"\npublic_key = "{p[1]}"\n' for i, p in enumerate(pairs))
    with open(os.path.join(work, "server.toml"), "w") as f:
        f.write(conf)
    state = os.path.join(work, "state")
    os.makedirs(state, mode=0o700, exist_ok=True)
    env = dict(os.environ, TN_STATE_DIR=state)
    log = open(os.path.join(work, "server.log"), "w")
    srv = subprocess.Popen(["ip", "netns", "exec", net.srv, a.tn_tun, "-q", "server", "-c",
                            os.path.join(work, "server.toml")], stdout=log, stderr=subprocess.STDOUT, env=env)
    r = {"n": n, "window": a.window}
    try:
        deadline = time.monotonic() + 60
        while sh(a.tn_tun, "status", "--json", "--tun", "tnsc0", env=env, check=False).returncode != 0:
            if srv.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not come up: " + open(log.name).read())
            time.sleep(0.05)
        cpu0, rss0 = proc_stat(srv.pid)
        r["status_idle_ms"] = status_ms(a, env, n)
        gen = subprocess.Popen(["ip", "netns", "exec", net.sw, a.peers, "run", "--server", f"{SRV_IP}:{PORT}",
                                "--server-key", spub, "--keys", keys, "--bind", SW_BASE + "1", "--size", str(a.size),
                                "--addresses", str(min(n, MAX_ADDRESSES)),
                                "--rate", str(a.rate), "--steady-seconds", str(a.seconds), "--window", str(a.window),
                                "--flood-seconds", str(a.seconds), "--connect-timeout", "300", "--cipher", a.cipher],
                               stdout=subprocess.PIPE, text=True)
        follow(a, gen, srv.pid, cpu0, rss0, r, lambda: status_ms(a, env, n))
        r["udp_rcvbuf_errors"] = {ns: udp_rcvbuf_errors(net, ns) for ns in ("srv", "sw")}
        # The kernel's replies queued to the server's TUN and dropped there (its queue was full).
        link = json.loads(net.ns(net.srv, "ip", "-s", "-j", "link", "show", "tnsc0").stdout)[0]
        r["tun_tx_dropped"] = link["stats64"]["tx"]["dropped"]
        if gen.wait() != 0:
            raise RuntimeError(f"tn-tun-peers exited {gen.returncode}")
        c = r.get("connect", {})
        print(f"N={n}: {c.get('aes_sessions', 0)} of {c.get('connected', 0)} sessions AES-256-GCM "
              f"(--cipher {a.cipher}, the peers {'offered' if c.get('offer_aes') else 'did not offer'} it)",
              file=sys.stderr)
    finally:
        srv.terminate()
        srv.wait(10)
        log.close()
    return r


def mbit_of(r):
    f = r.get("flood", {})
    return f.get("reply_bytes", 0) * 8 / max(f.get("seconds", 1), 1e-9) / 1e6


def table(results):
    bases = {r.get("impl", "tn-tun"): r for r in results if r["n"] == 1 and "flood" in r}  # x N=1: per implementation
    cols = ["impl", "N", "core hs/s", "hs/s wall", "srv CPU ms/hs", "cookies", "RSS B/peer", "status ms (idle/load)",
            "steady p50/p99 ms", "steady loss", "CPU % srv/gen", "flood in flight", "flood Mbit/s", "x N=1", "flood CPU % srv/gen", "drops rcvbuf srv/gen/TUN",
            "srv CPU us/echo", "flood p50 ms"]
    print(" | ".join(cols))
    for r in results:
        c, s, f = r.get("connect", {}), r.get("steady", {}), r.get("flood", {})
        base = bases.get(r.get("impl", "tn-tun"))
        mbit, bmbit = mbit_of(r), mbit_of(base) if base else 0
        loss = 1 - s.get("replies", 0) / max(1, s.get("sent", 1))
        print(" | ".join([
            r.get("impl", "tn-tun"), str(r["n"]), f"{r['core']['handshakes_per_second']:.0f}" if "core" in r else "-", f"{c.get('connected', 0) / max(c.get('seconds', 1), 1e-9):.0f}",
            f"{r.get('server_cpu_ms_per_handshake', 0):.2f}", str(c.get("cookies", "-")),
            f"{r.get('rss_per_peer_bytes', 0):.0f}",
            f"{r['status_idle_ms']:.1f}/{r['status_ms']:.1f}" if "status_ms" in r else "-",
            f"{s.get('rtt_p50_ms', 0):.3f}/{s.get('rtt_p99_ms', 0):.3f}", f"{loss:.1%}",
            f"{r.get('server_cpu_pct_steady', 0):.0f}/{r.get('gen_cpu_pct_steady', 0):.0f}", str(max(r["window"], r["n"])),
            f"{mbit:.0f}", f"{mbit / bmbit:.2f}" if bmbit else "-",
            f"{r.get('server_cpu_pct_flood', 0):.0f}/{r.get('gen_cpu_pct_flood', 0):.0f}",
            "{srv}/{sw}".format(**r.get("udp_rcvbuf_errors", {"srv": "-", "sw": "-"})) + f"/{r.get('tun_tx_dropped', '-')}", f"{r.get('server_cpu_us_per_echo', 0):.1f}", f"{f.get('rtt_p50_ms', 0):.3f}"]))


def ratios(tn, wg):
    """tn-tun / wireguard-go per N, both measured in this run (bench/tun/SCALE.md says which way is better)."""
    def steady(r, k):
        return r.get("steady", {}).get(k, 0)

    def loss(r):
        return 1 - steady(r, "replies") / max(1, steady(r, "sent"))

    def q(x, y, fmt="{:.2f}"):
        return fmt.format(x / y) if y else "-"

    print("\ntn-tun / wireguard-go, same run")
    print(" | ".join(["N", "hs/s wall", "RSS B/peer", "steady p50", "steady loss tn/wg", "flood Mbit/s",
                      "srv CPU us/echo", "CPU % srv steady"]))
    by_n = {r["n"]: r for r in wg}
    for t in tn:
        w = by_n.get(t["n"])
        if not w:
            continue
        hs = [r.get("connect", {}).get("connected", 0) / max(r.get("connect", {}).get("seconds", 1), 1e-9)
              for r in (t, w)]
        print(" | ".join([str(t["n"]), q(*hs), q(t.get("rss_per_peer_bytes", 0), w.get("rss_per_peer_bytes", 0)),
                          q(steady(t, "rtt_p50_ms"), steady(w, "rtt_p50_ms")), f"{loss(t):.1%}/{loss(w):.1%}",
                          q(mbit_of(t), mbit_of(w)), q(t.get("server_cpu_us_per_echo", 0), w.get("server_cpu_us_per_echo", 0)),
                          q(t.get("server_cpu_pct_steady", 0), w.get("server_cpu_pct_steady", 0))]))


def anchor(a, n, out):
    """The same N against wireguard-go in fresh namespaces (bench/tun/scale_wg.py)."""
    import scale_wg  # noqa: E402 (beside this file)
    net, work = Net(min(n, MAX_ADDRESSES)), tempfile.mkdtemp(prefix="tn-bench-scale-wg-")
    try:
        r = scale_wg.one_wg(a, net, n, work, sh, proc_stat, follow, subnet_for(n), SRV_IP, SW_BASE + "1",
                            min(n, MAX_ADDRESSES))
        r["udp_rcvbuf_errors"] = {ns: udp_rcvbuf_errors(net, ns) for ns in ("srv", "sw")}
        out.append(r)
    except Exception as e:  # one N failing must not hide the others
        print(f"N={n} wireguard-go: failed: {e}", file=sys.stderr)
    finally:
        net.close()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    ap.add_argument("--n", default="1,10,100,1000")
    ap.add_argument("--build", default=os.path.join(root, "build"))
    ap.add_argument("--seconds", type=float, default=5, help="steady and flood phase length each")
    ap.add_argument("--rate", type=float, default=10, help="steady phase: echoes per second per peer")
    ap.add_argument("--window", type=int, default=None,
                    help="flood: echoes in flight in total, the same for every N (N = 1 sends all of them; "
                         "at least one per peer); default: the largest N, so every N has the same load")
    ap.add_argument("--size", type=int, default=1000, help="inner packet bytes")
    ap.add_argument("--cipher", choices=("auto", "aes", "chacha"), default="auto",
                    help="what the peers offer: auto (AES-256-GCM where the CPU has AES-NI, as a real client), aes, chacha")
    ap.add_argument("--json", action="store_true", help="print the raw results as JSON too")
    ap.add_argument("--no-wg", dest="wg", action="store_false",
                    help="skip the anchor (wireguard-go with N peers, driven by wg_peers.py)")
    a = ap.parse_args()
    if a.window is None:
        a.window = max(int(x) for x in a.n.split(","))
    if os.geteuid() != 0:
        print("bench/tun/scale.py needs root (network namespaces, TUN devices)", file=sys.stderr)
        return 77
    a.tn_tun = os.path.join(a.build, "tools", "tn-tun", "tn-tun")
    a.peers = os.path.join(a.build, "bench", "tun", "tn-tun-peers")
    if a.wg and not shutil.which("wireguard-go"):
        print("no wireguard-go on PATH: the anchor is skipped", file=sys.stderr)
        a.wg = False
    results, wg = [], []
    for n in [int(x) for x in a.n.split(",")]:
        core = json.loads(sh(a.peers, "core", str(n), "--rounds", str(max(1, 300 // n)), "--cipher", a.cipher).stdout)
        net, work = Net(min(n, MAX_ADDRESSES)), tempfile.mkdtemp(prefix="tn-bench-scale-")
        try:
            r = one(a, net, n, work)
            r["core"] = core
            results.append(r)
        except Exception as e:  # one N failing must not hide the others
            print(f"N={n}: failed: {e}", file=sys.stderr)
        finally:
            net.close()
            shutil.rmtree(work, ignore_errors=True)
        print(f"N={n}: core {core['server_cpu_us_per_handshake']:.0f} us CPU per handshake "
              f"({core['handshakes_per_second']:.0f}/s on one core, no rate limit, no I/O)", file=sys.stderr)
        if a.wg:
            anchor(a, n, wg)
    table(results + wg)
    if wg:
        ratios(results, wg)
    if a.json:
        print(json.dumps(results + wg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
