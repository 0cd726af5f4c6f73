#!/usr/bin/python3
"""bench/relay: tn-route/tn-vnet against their anchors, side by side in one run on loopback.

  throughput  use->route->serve (TLS off) vs a chain of three socat relays; TLS on vs ssh -L aes128-gcm
  setup       new proxied connections per second and p50/p99 setup latency vs the socat chain and ssh -L:
              one client at a time (latency-bound), then --clients processes at once (capacity)
  memory      route RSS per idle proxied connection at N connections; route RSS after M vnet
              connect/drop cycles vs after the first 100
  sni         HTTPS vhost setup by SNI ([http] listen_tls: client -> route -> serving vnet -> a TLS
              echo server), one at a time: TLS handshake + 1-byte echo + close per connection, vs the
              same through a chain of two socat relays (the same hops, no SNI to read)
  udp         UDP goodput of one flow through a use and a UDP remote_port vs socat UDP relay chains
              of as many hops (udp_relay.py)

Usage (as root, for the throwaway sshd user): /usr/bin/python3 bench/relay/bench_relay.py BUILD_DIR
  [--seconds 5] [--conns 5000] [--cycles 10000] [--setup 400] [--clients 8]
"""
import argparse
import hashlib
import hmac
import json
import os
import re
import resource
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import harness  # noqa: E402
import udp_relay  # noqa: E402

ECHO_SRC = r"""
import asyncio, sys
async def h(r, w):
    try:
        while True:
            b = await r.read(65536)
            if not b: break
            w.write(b); await w.drain()
    except Exception: pass
    w.close()
async def main():
    s = await asyncio.start_server(h, "127.0.0.1", int(sys.argv[1]), backlog=4096)
    async with s: await s.serve_forever()
asyncio.run(main())
"""

# The same echo behind TLS (argv: port, cert, key): the site an HTTPS vhost relays to, unopened.
TLS_ECHO_SRC = ECHO_SRC.replace("backlog=4096)", "backlog=4096, ssl=ctx)").replace(
    "async def main():", "import ssl\nctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "ctx.load_cert_chain(sys.argv[2], sys.argv[3])\nasync def main():")
SNI_HOST = "bench.example.test"


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class World:
    def __init__(self, build):
        self.build = build
        self.dir = tempfile.mkdtemp(prefix="tn-bench-relay-")
        self.procs = []
        self.env = dict(os.environ, TN_STATE_DIR=os.path.join(self.dir, "state"))

    def spawn(self, cmd, name):
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        p = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=self.env, preexec_fn=raise_nofile)
        p.log_path = log.name
        self.procs.append(p)
        return p

    def close(self):
        for p in reversed(self.procs):
            harness.stop_process(p)
        subprocess.run(["rm", "-rf", self.dir])

    def tn_chain(self, target_port, tls, token="bench-token-123456", pool=None):
        route = os.path.join(self.build, "tools", "tn-route", "tn-route")
        vnet = os.path.join(self.build, "tools", "tn-vnet", "tn-vnet")
        rport, uport = harness.free_port(), harness.free_port()
        self.n = getattr(self, "n", 0) + 1
        tag = ("tls" if tls else "plain") + str(self.n)
        rc = os.path.join(self.dir, f"route-{tag}.toml")
        with open(rc, "w") as f:
            f.write(f'[route]\nlisten = "127.0.0.1:{rport}"\ntls = {str(tls).lower()}\n[[group]]\nname = "b"\ntoken = "{token}"\n')
        fp = subprocess.run([route, "-q", "-c", rc, "fingerprint"], capture_output=True, text=True, env=self.env).stdout.strip()
        rp = self.spawn([route, "-q", "-c", rc], "route-" + tag)
        harness.wait_port(rport, proc=rp)
        head = f'[route]\naddress = "127.0.0.1:{rport}"\ntoken = "{token}"\ntls = {str(tls).lower()}\nfingerprint = "{fp}"\n'
        for name, body in ((f"home-{tag}", f'[[serve]]\nname = "t"\nid = 700\nport = {target_port}\n'),
                           (f"office-{tag}", f'[[use]]\nname = "t"\nid = 700\nport = {uport}\n')):
            c = os.path.join(self.dir, name + ".toml")
            with open(c, "w") as f:
                f.write(head + f'[vnet]\nname = "{name}"\ngroup = "b"\n' + (f"link_pool = {pool}\n" if pool is not None else "") + body)
            p = self.spawn([vnet, "-q", "-c", c], name)
        harness.wait_port(uport, proc=p)
        return rp, uport, rport, fp

    def sni_chain(self, target_port, token="bench-token-123456"):
        """A route with [http] listen_tls and a vnet serving SNI_HOST from `target_port`; returns the TLS port."""
        route = os.path.join(self.build, "tools", "tn-route", "tn-route")
        vnet = os.path.join(self.build, "tools", "tn-vnet", "tn-vnet")
        rport, hport = harness.free_port(), harness.free_port()
        rc = os.path.join(self.dir, "route-sni.toml")
        with open(rc, "w") as f:
            f.write(f'[route]\nlisten = "127.0.0.1:{rport}"\n[[group]]\nname = "b"\ntoken = "{token}"\n'
                    f'domains = ["*.example.test"]\n[http]\nlisten_tls = "127.0.0.1:{hport}"\n')
        fp = subprocess.run([route, "-q", "-c", rc, "fingerprint"], capture_output=True, text=True, env=self.env).stdout.strip()
        harness.wait_port(rport, proc=self.spawn([route, "-q", "-c", rc], "route-sni"))
        c = os.path.join(self.dir, "home-sni.toml")
        with open(c, "w") as f:
            f.write(f'[route]\naddress = "127.0.0.1:{rport}"\ntoken = "{token}"\nfingerprint = "{fp}"\n'
                    f'[vnet]\nname = "home-sni"\ngroup = "b"\n[[serve]]\nname = "site"\nport = {target_port}\n'
                    f'custom_domains = ["{SNI_HOST}"]\n')
        self.spawn([vnet, "-q", "-c", c], "home-sni")
        deadline = time.monotonic() + 20
        while True:  # registered: a handshake by SNI gets through
            try:
                one_tls_setup(hport)
                return hport
            except (OSError, ssl.SSLError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def socat_chain(self, target_port, hops=3):
        ports = [harness.free_port() for _ in range(hops)]
        nxt = target_port
        for p in reversed(ports):
            proc = self.spawn(["socat", f"TCP-LISTEN:{p},bind=127.0.0.1,reuseaddr,fork,backlog=4096", f"TCP:127.0.0.1:{nxt}"], f"socat{p}")
            harness.wait_port(p, proc=proc)
            nxt = p
        return ports[0]

    def ssh_l(self, sshd, client, target_port):
        lport = harness.free_port()
        p = self.spawn(["ssh", "-N", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-c", "aes128-gcm@openssh.com",
                        "-o", f"UserKnownHostsFile={client.known_hosts}", "-i", os.path.join(client.ssh_dir, "id_ed25519"),
                        "-p", str(sshd.port), "-L", f"127.0.0.1:{lport}:127.0.0.1:{target_port}",
                        f"{sshd.user.name}@127.0.0.1"], "ssh-L")
        harness.wait_port(lport, proc=p, timeout=20)
        return lport


def iperf(port, seconds):
    for _ in range(3):  # iperf3 -s takes one test at a time: retry if the previous one is still closing
        v = iperf_once(port, seconds)
        if v == v and v > 0:
            return v
        time.sleep(1)
    return v


def iperf_once(port, seconds):
    r = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds), "-J"], capture_output=True, text=True,
                       timeout=seconds + 60)
    if r.returncode != 0:
        return float("nan")
    try:
        return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9
    except (ValueError, KeyError):  # iperf3 reported an error (a refused or dropped test): retried
        return float("nan")


def one_setup(port):
    """Connect, 1 byte there and back, close; returns the milliseconds until the byte came back."""
    a = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"x")
    if s.recv(1) != b"x":
        raise RuntimeError("echo failed")
    ms = (time.perf_counter() - a) * 1000
    s.close()
    return ms


_TLS_CLIENT = None


def one_tls_setup(port):
    """Connect, TLS handshake with SNI_HOST, 1 byte there and back, close; returns milliseconds."""
    global _TLS_CLIENT
    if _TLS_CLIENT is None:
        _TLS_CLIENT = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _TLS_CLIENT.check_hostname, _TLS_CLIENT.verify_mode = False, ssl.CERT_NONE  # throwaway cert
    a = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with _TLS_CLIENT.wrap_socket(raw, server_hostname=SNI_HOST) as s:
            s.sendall(b"x")
            if s.recv(1) != b"x":
                raise RuntimeError("echo failed")
            return (time.perf_counter() - a) * 1000


def sni(a, w):
    """HTTPS vhost setup by SNI vs two socat relays to the same TLS echo server."""
    cert, key = os.path.join(w.dir, "site.crt"), os.path.join(w.dir, "site.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-keyout", key, "-out", cert, "-subj", "/CN=" + SNI_HOST], check=True, capture_output=True)
    tport = harness.free_port()
    harness.wait_port(tport, proc=w.spawn([sys.executable, "-c", TLS_ECHO_SRC, str(tport), cert, key], "tls-echo"))
    sock2, tn_sni = w.socat_chain(tport, hops=2), w.sni_chain(tport)
    print("== HTTPS vhost setup by SNI (%d sequential TLS handshake+1-byte echo+close, %d alternating rounds) =="
          % (a.setup, a.rounds), flush=True)

    def rate(port):
        t0 = time.perf_counter()
        lat = [one_tls_setup(port) for _ in range(a.setup)]
        return (a.setup / (time.perf_counter() - t0),) + percentiles(lat)

    g = alternate(a, [("socat2", lambda: rate(sock2)), ("tn-sni", lambda: rate(tn_sni))])
    for label in ("socat2", "tn-sni"):
        print(f"{label:9s} median {median([v[0] for v in g[label]]):6.0f} conn/s   p50 {median([v[1] for v in g[label]]):5.2f} ms"
              f"   p99 {median([v[2] for v in g[label]]):5.2f} ms")
    ratios = [t[0] / x[0] for t, x in zip(g["tn-sni"], g["socat2"])]
    print(f"tn-sni vs socat2: median ratio {median(ratios):.2f}x ({spread(ratios)})")


def percentiles(lat):
    lat = sorted(lat)
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def setup_rate(port, n):
    """Sequential one_setup()s. Returns (conns/s, p50 ms, p99 ms)."""
    t0 = time.perf_counter()
    lat = [one_setup(port) for _ in range(n)]
    return (n / (time.perf_counter() - t0),) + percentiles(lat)


def _setup_worker(args):
    port, until = args
    lat = []
    while time.perf_counter() < until:
        lat.append(one_setup(port))
    return lat


def setup_rate_concurrent(port, clients, seconds):
    """`clients` processes each run setup_rate's loop for `seconds`. Returns (conns/s, p50 ms, p99 ms)."""
    import multiprocessing
    until = time.perf_counter() + seconds
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        lats = pool.map(_setup_worker, [(port, until)] * clients)
    lat = [x for one in lats for x in one]
    return (len(lat) / seconds,) + percentiles(lat)


def heap_in_use(p):
    """Bytes malloc holds in use in process `p` (spawned by World: its stderr is its log), or None
    without gdb. glibc's malloc_stats(), called through gdb, prints them to the process's stderr. RSS
    cannot show memory given back to the heap: glibc keeps those pages for the next allocation."""
    if not shutil.which("gdb"):
        return None
    seen = os.path.getsize(p.log_path)
    subprocess.run(["gdb", "-p", str(p.pid), "-batch", "-ex", "call (void)malloc_stats()"], capture_output=True, timeout=60)
    for _ in range(100):
        with open(p.log_path, errors="replace") as f:
            f.seek(seen)
            m = re.search(r"Total \(incl. mmap\):\s*system bytes\s*=\s*\d+\s*in use bytes\s*=\s*(\d+)", f.read())
        if m:
            return int(m.group(1))
        time.sleep(0.05)
    return None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def vnet_cycle(port, fp, token, i):
    """One vnet session as tn-vnet does it (doc/PROTOCOL.relay.md §5: TLS 1.3, hello version 6, the
    proof bound to the TLS exporter), then a drop. pyOpenSSL (python3-openssl): Python's ssl module has
    no exporter. The bench trusts its own route on loopback; `fp` is not checked."""
    from OpenSSL import SSL  # only here: the other parts run without python3-openssl
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    raw.settimeout(None)  # pyOpenSSL wants a blocking socket; the route answers at once
    s = SSL.Connection(ctx, raw)
    s.set_connect_state()
    s.do_handshake()
    exporter = s.export_keying_material(b"EXPORTER-tn-relay-5 auth", 32)

    def read(n):
        b = b""
        while len(b) < n:
            try:
                c = s.recv(n - len(b))
            except SSL.ZeroReturnError:
                c = b""
            if not c:
                raise RuntimeError("closed")
            b += c
        return b

    s.sendall(b"TNRL\x00\x06\x00\x00")
    read(8)
    t, flags, ln = struct.unpack(">HHI", read(8))
    nr = read(ln)
    nv = os.urandom(32)
    group, name = b"b", f"cycle{i % 50}".encode()
    mac = hmac.new(token.encode(), b"tn-relay-5 vnet" + nr + nv + group + b"\0" + name + exporter, hashlib.sha256).digest()
    body = struct.pack(">H", len(group)) + group + struct.pack(">H", len(name)) + name + struct.pack(">Q", i + 1) + nv + mac
    s.sendall(struct.pack(">HHI", 2, 0, len(body)) + body)
    t, flags, ln = struct.unpack(">HHI", read(8))
    read(ln)
    if t != 3:
        raise RuntimeError(f"not welcomed: type {t}")
    raw.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=5000)
    ap.add_argument("--cycles", type=int, default=10000)
    ap.add_argument("--setup", type=int, default=400)
    ap.add_argument("--clients", type=int, default=8, help="concurrent setup: client processes (0 skips it)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds for throughput and setup (medians compared)")
    ap.add_argument("--parts", default="throughput,setup,sni,memory,udp", help="comma-separated subset to run (also: seal)")
    ap.add_argument("--udp-size", type=int, default=1400, help="udp: datagram size in bytes")
    a = ap.parse_args()
    raise_nofile()
    w = World(os.path.abspath(a.build))
    sshd = client = None
    try:
        iport, eport = harness.free_port(), harness.free_port()
        ip = w.spawn(["iperf3", "-s", "-p", str(iport)], "iperf3")
        ep = w.spawn([sys.executable, "-c", ECHO_SRC, str(eport)], "echo")
        harness.wait_port(iport, proc=ip)
        harness.wait_port(eport, proc=ep)
        sock_i, sock_e = w.socat_chain(iport), w.socat_chain(eport)
        _, plain_i, _, _ = w.tn_chain(iport, tls=False)
        _, tls_i, _, _ = w.tn_chain(iport, tls=True)
        plain_route, plain_e, _, _ = w.tn_chain(eport, tls=False)
        tls_route, tls_e, _, _ = w.tn_chain(eport, tls=True)
        ssh_i = ssh_e = None
        if harness.is_root():
            sshd = harness.Sshd().start()
            client = harness.ClientHome()
            sshd.user.authorize(client.key())
            client.trust(sshd)
            ssh_i, ssh_e = w.ssh_l(sshd, client, iport), w.ssh_l(sshd, client, eport)

        parts = set(a.parts.split(","))
        if "seal" in parts:
            seal_bench(a)
        if "throughput" in parts:
            throughput(a, iport, sock_i, plain_i, tls_i, ssh_i)
        if "setup" in parts:
            setup(a, sock_e, ssh_e, plain_e, tls_e)
        if "sni" in parts:
            sni(a, w)
        if "udp" in parts:
            udp_relay.run(a, w, alternate, median, spread)
        if "memory" in parts:
            memory(a, w, eport, plain_route, plain_e, tls_route, tls_e)
    finally:
        w.close()
        if client:
            client.close()
        if sshd:
            sshd.close()


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def spread(v):
    return f"{min(v):.2f}-{max(v):.2f}"


def alternate(a, runs):
    """Runs each (label, fn) once per round, in forward order on even rounds and reversed on odd ones,
    so a slow moment of the shared machine does not always hit the same side. Returns label -> values."""
    got = {label: [] for label, _ in runs}
    for r in range(a.rounds):
        order = runs if r % 2 == 0 else list(reversed(runs))
        for label, fn in order:
            got[label].append(fn())
        print(f"  round {r + 1}: " + ", ".join(f"{label} {got[label][-1] if not isinstance(got[label][-1], tuple) else got[label][-1][0]:.2f}"
                                              for label, _ in runs), flush=True)
    return got


def throughput(a, iport, sock_i, plain_i, tls_i, ssh_i):
    print("== throughput (iperf3, %d s each, Gbit/s, %d alternating rounds) ==" % (a.seconds, a.rounds), flush=True)
    runs = [("direct", lambda: iperf(iport, a.seconds)), ("socat3", lambda: iperf(sock_i, a.seconds)),
            ("tn-plain", lambda: iperf(plain_i, a.seconds)), ("tn-tls", lambda: iperf(tls_i, a.seconds))]
    if ssh_i:
        runs.insert(3, ("ssh-L", lambda: iperf(ssh_i, a.seconds)))
    g = alternate(a, runs)
    print(f"loopback direct            {median(g['direct']):7.2f}   ({spread(g['direct'])})")
    print(f"socat x3 chain             {median(g['socat3']):7.2f}   ({spread(g['socat3'])})")
    pr = [t / s for t, s in zip(g["tn-plain"], g["socat3"])]
    print(f"tn plain use->route->serve {median(g['tn-plain']):7.2f}   ({spread(g['tn-plain'])})   ratio vs socat x3 per round: "
          f"median {median(pr):.2f} ({spread(pr)}) (target >= 1.5)")
    if ssh_i:
        tr = [t / s for t, s in zip(g["tn-tls"], g["ssh-L"])]
        print(f"ssh -L aes128-gcm          {median(g['ssh-L']):7.2f}   ({spread(g['ssh-L'])})")
        print(f"tn TLS use->route->serve   {median(g['tn-tls']):7.2f}   ({spread(g['tn-tls'])})   ratio vs ssh -L per round: "
              f"median {median(tr):.2f} ({spread(tr)}) (target >= 1.0)")


def setup(a, sock_e, ssh_e, plain_e, tls_e):
    ports = [(label, port) for label, port in (("socat3", sock_e), ("ssh-L", ssh_e), ("tn-plain", plain_e), ("tn-tls", tls_e))
             if port is not None]
    print("== connection setup (%d sequential connect+1-byte echo+close, %d alternating rounds) ==" % (a.setup, a.rounds), flush=True)
    report(a, [(label, (lambda p=port: setup_rate(p, a.setup))) for label, port in ports])
    if a.clients:
        print("== connection setup, %d concurrent clients for 3 s each, %d alternating rounds ==" % (a.clients, a.rounds), flush=True)
        report(a, [(label, (lambda p=port: setup_rate_concurrent(p, a.clients, 3))) for label, port in ports])


def report(a, runs):
    g = alternate(a, runs)
    for label, _ in runs:
        rates = [v[0] for v in g[label]]
        p50 = median([v[1] for v in g[label]])
        p99 = median([v[2] for v in g[label]])
        print(f"{label:9s} median {median(rates):6.0f} conn/s (rounds {', '.join(f'{r:.0f}' for r in rates)})   "
              f"p50 {p50:5.2f} ms   p99 {p99:5.2f} ms")
    for label in ("tn-plain", "tn-tls"):
        for anchor in ("socat3", "ssh-L"):
            if anchor in g:
                wins = sum(1 for t, x in zip(g[label], g[anchor]) if t[0] > x[0])
                ratio = median([t[0] / x[0] for t, x in zip(g[label], g[anchor])])
                print(f"{label} beats {anchor} in {wins} of {a.rounds} rounds (median ratio {ratio:.2f}x)")


def seal_bench(a):
    """The record layer alone (bench/relay/seal_bench.cpp): seal/open GB/s per cipher and record size."""
    print("== sealed records, one core, no I/O ==", flush=True)
    root = os.path.join(HERE, "..", "..")
    exe = os.path.join(tempfile.mkdtemp(prefix="tn-seal-bench-"), "seal_bench")
    subprocess.run(["c++", "-O2", "-std=c++20", "-I", os.path.join(root, "lib"), os.path.join(HERE, "seal_bench.cpp"),
                    os.path.join(a.build, "lib", "relay", "libtn_relay.a"), os.path.join(a.build, "lib", "base", "libtn_base.a"),
                    "-lcrypto", "-o", exe], check=True)
    subprocess.run([exe], check=True)
    subprocess.run(["rm", "-rf", os.path.dirname(exe)])


def memory(a, w, eport, plain_route, plain_e, tls_route, tls_e):
    print("== route memory ==")
    for label, route, port in (("plain", plain_route, plain_e), ("TLS", tls_route, tls_e)):
        time.sleep(0.5)
        before = rss_kib(route.pid)
        vnets = w.procs[w.procs.index(route) + 1:][:2]  # tn_chain spawns the serving and the using vnet next
        heap_before = [heap_in_use(v) for v in vnets]
        socks = []
        try:
            # In batches of 50: the route refuses more than 64 pending links for one serve at once (a
            # quarter of its 256, so one serve cannot take the whole table).
            for i in range(0, a.conns, 50):
                batch = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(min(50, a.conns - i))]
                for s in batch:
                    s.sendall(b"y")
                for s in batch:  # the link is bound and has carried a byte: now idle
                    if s.recv(1) != b"y":
                        raise RuntimeError("echo failed")
                socks += batch
            time.sleep(1)
            after = rss_kib(route.pid)
            print(f"{label:6s} route RSS {before} KiB -> {after} KiB with {len(socks)} idle proxied connections: "
                  f"{(after - before) / len(socks):.1f} KiB each (target < 24; ssh -L ~67)")
            # The vnets let go of an idle link's AEAD state at their next heartbeat (5 s by default).
            time.sleep(11)
            heap_after = [heap_in_use(v) for v in vnets]
            if None not in heap_before + heap_after:
                each = [round((h1 - h0) / len(socks)) for h0, h1 in zip(heap_before, heap_after)]
                print(f"{label:6s} vnets' heap in use per idle connection, serving/using: {each[0]}/{each[1]} B")
        finally:
            for s in socks:
                s.close()
    # A fresh route for the cycles, so the idle-connection test above does not set its baseline.
    w.procs.remove(tls_route)
    harness.stop_process(tls_route)
    tls_route, _, tls_rport, tls_fp = w.tn_chain(eport, tls=True)
    token = "bench-token-123456"
    for i in range(100):
        vnet_cycle(tls_rport, tls_fp, token, i)
    time.sleep(0.5)
    r100 = rss_kib(tls_route.pid)
    t0 = time.perf_counter()
    for i in range(100, a.cycles):
        vnet_cycle(tls_rport, tls_fp, token, i)
    time.sleep(1)
    rn = rss_kib(tls_route.pid)
    print(f"TLS route RSS after 100 vnet connect/drop cycles {r100} KiB, after {a.cycles}: {rn} KiB "
          f"({(rn - r100) * 100.0 / r100:+.1f} %, target <= +10 %; {a.cycles / (time.perf_counter() - t0):.0f} cycles/s)")


if __name__ == "__main__":
    main()
