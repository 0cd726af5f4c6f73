"""bench/relay's `udp` part: UDP throughput through a tn-vnet use (use -> route -> serve, three relays)
and through a UDP remote_port (route -> serve, two), next to chains of as many socat UDP relays, in
one run of alternating rounds.

One sender process sends --udp-size datagrams as fast as it can for --seconds on one flow; a sink
counts what arrives. Goodput is the bytes the sink got over the time from its first to its last
datagram: UDP drops what a relay cannot take, so the goodput is the chain's capacity and the loss
is printed beside it. The sink answers two control datagrams on the same path ("?reset", "?stats"),
so each chain is measured through itself with no side channel.
"""
import os
import socket
import subprocess
import sys
import time

import harness  # noqa: E402 (bench_relay.py puts tests/integration on the path)

SINK_SRC = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(("127.0.0.1", int(sys.argv[1])))
buf = bytearray(65536)
n = b = 0
first = last = 0.0
while True:
    k, src = s.recvfrom_into(buf)
    if k and buf[0] == 0x3F:  # "?": a control datagram, answered to its source
        cmd = bytes(buf[:k])
        if cmd == b"?reset":
            n = b = 0
            first = last = 0.0
        s.sendto(b"%d %d %.6f" % (n, b, last - first), src)
        continue
    now = time.monotonic()
    if not n:
        first = now
    last = now
    n += 1
    b += k
"""

SENDER_SRC = r"""
import socket, sys, time
port, size, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", port))
d = b"x" * size
n = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    for _ in range(64):
        try:
            s.send(d)
            n += 1
        except OSError:  # ECONNREFUSED from an earlier datagram, ENOBUFS: the datagram is lost
            pass
print(n)
"""


def control(port, cmd, timeout=20):
    """Sends `cmd` to the sink through the chain at `port` until it answers: (datagrams, bytes, seconds)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.2)
    deadline = time.monotonic() + timeout
    try:
        while True:
            s.sendto(cmd, ("127.0.0.1", port))
            try:
                n, b, t = s.recvfrom(100)[0].split()
                return int(n), int(b), float(t)
            except socket.timeout:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no answer from the sink through port {port}")
    finally:
        s.close()


def udp_chain(w, target_port, tls, remote, token="bench-token-123456"):
    """A route and vnets carrying UDP to `target_port`: through a use (remote=False) or a UDP
    remote_port (remote=True). Returns the port a sender sends to."""
    route = os.path.join(w.build, "tools", "tn-route", "tn-route")
    vnet = os.path.join(w.build, "tools", "tn-vnet", "tn-vnet")
    rport, port = harness.free_port(), harness.free_port()
    w.n = getattr(w, "n", 0) + 1
    tag = f"udp{w.n}"
    rc = os.path.join(w.dir, f"route-{tag}.toml")
    with open(rc, "w") as f:
        f.write(f'[route]\nlisten = "127.0.0.1:{rport}"\ntls = {str(tls).lower()}\n[[group]]\nname = "b"\ntoken = "{token}"\n'
                f'ports = [{port}]\n')
    fp = subprocess.run([route, "-q", "-c", rc, "fingerprint"], capture_output=True, text=True, env=w.env).stdout.strip()
    harness.wait_port(rport, proc=w.spawn([route, "-q", "-c", rc], "route-" + tag))
    head = f'[route]\naddress = "127.0.0.1:{rport}"\ntoken = "{token}"\ntls = {str(tls).lower()}\nfingerprint = "{fp}"\n'
    serve = f'[[serve]]\nname = "u"\nid = 710\ntype = "udp"\nport = {target_port}\n' + (f"remote_port = {port}\n" if remote else "")
    vnets = [(f"home-{tag}", serve)]
    if not remote:
        vnets.append((f"office-{tag}", f'[[use]]\nname = "u"\nid = 710\ntype = "udp"\nport = {port}\n'))
    for name, body in vnets:
        c = os.path.join(w.dir, name + ".toml")
        with open(c, "w") as f:
            f.write(head + f'[vnet]\nname = "{name}"\ngroup = "b"\n' + body)
        w.spawn([vnet, "-q", "-c", c], name)
    control(port, b"?stats", timeout=30)  # up: the sink answers through the chain
    return port


def socat_udp_chain(w, target_port, hops):
    ports = [harness.free_port() for _ in range(hops)]
    nxt = target_port
    for p in reversed(ports):
        w.spawn(["socat", f"UDP-LISTEN:{p},bind=127.0.0.1,reuseaddr,fork", f"UDP:127.0.0.1:{nxt}"], f"socat-udp{p}")
        nxt = p
    control(ports[0], b"?stats", timeout=30)
    return ports[0]


def goodput(port, size, seconds):
    """One blast through `port`: (Mbit/s at the sink, loss %)."""
    control(port, b"?reset")
    r = subprocess.run([sys.executable, "-c", SENDER_SRC, str(port), str(size), str(seconds)], capture_output=True, text=True,
                       check=True, timeout=seconds + 60)
    sent = int(r.stdout)
    time.sleep(0.5)  # datagrams still in the relays' buffers arrive; the sink's clock stops at the last
    n, b, t = control(port, b"?stats")
    rate = b * 8 / t / 1e6 if t > 0 else 0.0
    return rate, 100.0 * (sent - n) / sent if sent else 0.0


def run(a, w, alternate, median, spread):
    print("== udp (one flow of %d-byte datagrams, %g s each, Mbit/s at the sink, %d alternating rounds) =="
          % (a.udp_size, a.seconds, a.rounds), flush=True)
    sport = harness.free_port()
    w.spawn([sys.executable, "-c", SINK_SRC, str(sport)], "udp-sink")
    control(sport, b"?stats", timeout=30)
    chains = [("direct", sport), ("socat3", socat_udp_chain(w, sport, 3)), ("socat2", socat_udp_chain(w, sport, 2)),
              ("tn-use", udp_chain(w, sport, False, False)), ("tn-remote", udp_chain(w, sport, False, True)),
              ("tn-use-tls", udp_chain(w, sport, True, False)), ("tn-remote-tls", udp_chain(w, sport, True, True))]
    g = alternate(a, [(label, (lambda p=port: goodput(p, a.udp_size, a.seconds))) for label, port in chains])
    for label, _ in chains:
        rates = [v[0] for v in g[label]]
        print(f"{label:14s} {median(rates):8.1f}   ({spread(rates)})   loss median {median([v[1] for v in g[label]]):.1f} %")
    for label, anchor in (("tn-use", "socat3"), ("tn-remote", "socat2"), ("tn-use-tls", "socat3"), ("tn-remote-tls", "socat2")):
        r = [t[0] / s[0] for t, s in zip(g[label], g[anchor]) if s[0] > 0]
        if r:
            print(f"{label} vs {anchor} per round: median {median(r):.2f} ({spread(r)})")
