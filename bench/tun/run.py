#!/usr/bin/python3
"""bench/tun: iperf3 single-stream throughput and ping RTT over tn-tun, wireguard-go, OpenVPN
(UDP, AES-256-GCM, userspace) and the bare veth, on the same namespaces, in one run: client B to
server A (the tunnel's subnet only), and as a full tunnel through A's NAT to a third namespace I
("the internet", reached only from A) for tn-tun (default_route + nat) and wireguard-go
(AllowedIPs 0.0.0.0/0 with wg-quick's fwmark rules, nft masquerade on A).
Usage (root): bench/tun/run.py [path/to/tn-tun] [seconds] [only,these,paths]. Prints a table and
ratios to tn-tun (its row is `cipher = "auto"`: AES-256-GCM where the CPU has AES-NI; the
"tn-tun chacha20-poly1305" row forces the other suite) and to the bare veth. TN_TUN_OFFLOAD=0 in
the environment measures tn-tun without its offloads."""
import base64
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "build",
                                                          "tools", "tn-tun", "tn-tun")
SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
ONLY = sys.argv[3].split(",") if len(sys.argv) > 3 else None  # e.g. "tn-tun" while tuning
A_IP, B_IP = "192.168.88.1", "192.168.88.2"
A_WAN, I_IP = "192.168.89.1", "192.168.89.2"  # A's side and the internet host's of the A-I link
FULL = " full+NAT"  # suffix of the rows through the full tunnel and A's NAT to I
WG_MARK = 51821  # wg-quick's fwmark and routing table for wireguard-go's full tunnel


def sh(*cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


class Bench:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tn-bench-tun-")
        tag = secrets.token_hex(3)
        self.a, self.b, self.i = f"tnba{tag}", f"tnbb{tag}", f"tnbi{tag}"
        self.procs = []
        self.iperf = []
        for ns in (self.a, self.b, self.i):
            sh("ip", "netns", "add", ns)
            self.ns(ns, "ip", "link", "set", "lo", "up")
        self.wan = "bvw" + tag  # A's device towards I: what the full-tunnel rows masquerade out of
        for (da, ipa), (db, ipb), nsb in ((("bva" + tag, A_IP), ("bvb" + tag, B_IP), self.b),
                                          ((self.wan, A_WAN), ("bvi" + tag, I_IP), self.i)):
            sh("ip", "link", "add", da, "type", "veth", "peer", "name", db)
            for dev, ns, ip in ((da, self.a, ipa), (db, nsb, ipb)):
                sh("ip", "link", "set", dev, "netns", ns)
                self.ns(ns, "ip", "addr", "add", ip + "/24", "dev", dev)
                self.ns(ns, "ip", "link", "set", dev, "up")
        # I has no route to B or to any tunnel subnet: B reaches it only through A's NAT.

    def ns(self, ns, *cmd, check=True, **kw):
        return sh("ip", "netns", "exec", ns, *cmd, check=check, **kw)

    def spawn(self, ns, *cmd, env=None):
        log = open(os.path.join(self.dir, f"p{len(self.procs)}.log"), "w")
        p = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(3)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []

    def wait_ping(self, dst, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ns(self.b, "ping", "-c", "1", "-W", "1", dst, check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{dst} not reachable")

    def cpu_seconds(self):
        """CPU time (user + system) of the VPN daemons we started and that still run (not iperf3)."""
        total = 0.0
        for p in self.procs:
            if p.poll() is None and p not in self.iperf:
                try:
                    with open(f"/proc/{p.pid}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                except OSError:
                    pass
        return total

    def measure(self, dst, server_ns=None):
        """iperf3 and ping from B to dst, which the iperf3 server in server_ns (default A) binds."""
        self.wait_ping(dst)
        srv = self.spawn(server_ns or self.a, "iperf3", "-s", "-1", "-B", dst)
        self.iperf = [srv]
        time.sleep(0.5)
        cpu0, t0 = self.cpu_seconds(), time.monotonic()
        out = self.ns(self.b, "iperf3", "-c", dst, "-t", str(SECONDS), "-J", timeout=SECONDS + 60).stdout
        cpu = (self.cpu_seconds() - cpu0) / (time.monotonic() - t0) * 100
        srv.wait(10)
        end = json.loads(out)["end"]
        gbit = end["sum_received"]["bits_per_second"] / 1e9
        # iperf3's own CPU (sender, receiver; % of one core, its kernel work included): with the
        # daemons' it shows how the two cores of this machine were shared (bench/tun/SCALE.md).
        self.iperf_cpu = (end["cpu_utilization_percent"]["host_total"], end["cpu_utilization_percent"]["remote_total"])
        p = self.ns(self.b, "ping", "-c", "50", "-i", "0.02", "-q", dst).stdout
        rtts = self.ns(self.b, "ping", "-c", "50", "-i", "0.02", dst).stdout
        samples = [float(l.split("time=")[1].split()[0]) for l in rtts.splitlines() if "time=" in l]
        del p
        return gbit, statistics.median(samples), cpu

    def close(self):
        self.stop_all()
        for ns in (self.a, self.b, self.i):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def tn_tun(b, full=False, cipher="auto"):
    """tn-tun B -> A; full: B's `default_route = true` and A's `nat` out of its device towards I.
    cipher: both sides' `cipher` ("auto" is AES-256-GCM on a CPU with AES-NI)."""
    def key(name):
        priv = sh(TN, "keygen").stdout.strip()
        with open(os.path.join(b.dir, name + ".key"), "w") as f:
            f.write(priv + "\n")
        return sh(TN, "pubkey", input=priv).stdout.strip()
    spub, cpub = key("server"), key("client")
    with open(os.path.join(b.dir, "server.toml"), "w") as f:
        f.write(f'[server]\nlisten = "{A_IP}:51820"\nprivate_key_file = "server.key"\ntun = "tnb0"\n'
                f'subnet = "10.99.0.0/24"\nmtu = 1420\ncipher = "{cipher}"\n' + (f'nat = "{b.wan}"\n' if full else "") +
                f'[[peer]]\nname = "b"\npublic_key = "{cpub}"\n')
    with open(os.path.join(b.dir, "client.toml"), "w") as f:
        f.write(f'[client]\nserver = "{A_IP}:51820"\nprivate_key_file = "client.key"\nserver_public_key = "{spub}"\n'
                f'tun = "tnb0"\ncipher = "{cipher}"\n' + ("default_route = true\n" if full else ""))
    env = dict(os.environ, TN_STATE_DIR=b.dir)
    b.spawn(b.a, TN, "-q", "server", "-c", os.path.join(b.dir, "server.toml"), env=env)
    time.sleep(0.3)
    b.spawn(b.b, TN, "-q", "client", "-c", os.path.join(b.dir, "client.toml"), env=dict(env, TN_STATE_DIR=b.dir + "/c"))
    return I_IP if full else "10.99.0.1"


def wg_key():
    raw = bytearray(secrets.token_bytes(32))
    raw[0] &= 248
    raw[31] = (raw[31] & 127) | 64
    priv = base64.b64encode(bytes(raw)).decode()
    pub = sh(TN, "pubkey", input=priv).stdout.strip()  # X25519 public key: the same math as wg pubkey
    return base64.b64decode(priv).hex(), base64.b64decode(pub).hex()


def wg_uapi(iface, text):
    s = socket.socket(socket.AF_UNIX)
    s.connect(f"/var/run/wireguard/{iface}.sock")
    s.sendall(text.encode() + b"\n")
    resp = s.recv(4096).decode()
    s.close()
    if "errno=0" not in resp:
        raise RuntimeError(f"wireguard-go {iface}: {resp}")


def wireguard(b, full=False):
    """wireguard-go B -> A; full: B's AllowedIPs 0.0.0.0/0 routed as wg-quick does it (a fwmark on
    the tunnel's own datagrams, the default route in a table of its own, the main table's default
    suppressed) and on A forwarding plus an nft masquerade out of its device towards I."""
    (apriv, apub), (bpriv, bpub) = wg_key(), wg_key()
    tag = secrets.token_hex(2)
    ia, ib = "wga" + tag, "wgb" + tag
    for ns, iface, ip in ((b.a, ia, "10.98.0.1/24"), (b.b, ib, "10.98.0.2/24")):
        b.ns(ns, "wireguard-go", iface)  # forks into the background
        b.ns(ns, "ip", "addr", "add", ip, "dev", iface)
        b.ns(ns, "ip", "link", "set", iface, "mtu", "1420", "up")
    wg_uapi(ia, f"set=1\nprivate_key={apriv}\nlisten_port=51821\npublic_key={bpub}\nallowed_ip=10.98.0.2/32\n")
    b.wg = (ia, ib)
    if not full:
        wg_uapi(ib, f"set=1\nprivate_key={bpriv}\npublic_key={apub}\nendpoint={A_IP}:51821\nallowed_ip=10.98.0.0/24\n")
        return "10.98.0.1"
    wg_uapi(ib, f"set=1\nprivate_key={bpriv}\nfwmark={WG_MARK}\npublic_key={apub}\nendpoint={A_IP}:51821\n"
                "allowed_ip=0.0.0.0/0\n")
    b.ns(b.b, "ip", "route", "add", "default", "dev", ib, "table", str(WG_MARK))
    b.ns(b.b, "ip", "rule", "add", "not", "fwmark", str(WG_MARK), "table", str(WG_MARK))
    b.ns(b.b, "ip", "rule", "add", "table", "main", "suppress_prefixlength", "0")
    b.ns(b.a, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    b.ns(b.a, "nft", "-f", "-", input=f"table ip tn-bench-wg {{\n chain postrouting {{\n  type nat hook postrouting "
                                       f"priority srcnat;\n  ip saddr 10.98.0.0/24 oifname \"{b.wan}\" masquerade\n }}\n}}\n")
    b.wg_full = True
    return I_IP



def wireguard_down(b):
    for ns, iface in zip((b.a, b.b), getattr(b, "wg", ())):
        b.ns(ns, "ip", "link", "del", iface, check=False)  # wireguard-go exits when its device goes
    if getattr(b, "wg_full", False):  # what wireguard(full=True) added besides the devices
        b.ns(b.b, "ip", "rule", "del", "not", "fwmark", str(WG_MARK), "table", str(WG_MARK), check=False)
        b.ns(b.b, "ip", "rule", "del", "table", "main", "suppress_prefixlength", "0", check=False)
        b.ns(b.a, "nft", "delete", "table", "ip", "tn-bench-wg", check=False)
        b.ns(b.a, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        b.wg_full = False


def openvpn(b):
    d = b.dir
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
       "-subj", "/CN=bench", "-keyout", f"{d}/ovpn.key", "-out", f"{d}/ovpn.crt")
    common = ["openvpn", "--dev", "tun", "--proto", "udp", "--port", "1194", "--ca", f"{d}/ovpn.crt", "--cert",
              f"{d}/ovpn.crt", "--key", f"{d}/ovpn.key", "--dh", "none", "--data-ciphers", "AES-256-GCM",
              "--cipher", "AES-256-GCM", "--disable-dco", "--verb", "1", "--tun-mtu", "1420"]
    b.spawn(b.a, *common, "--tls-server", "--ifconfig", "10.97.0.1", "10.97.0.2", "--local", A_IP)
    b.spawn(b.b, *common, "--tls-client", "--remote", A_IP, "1194", "--ifconfig", "10.97.0.2", "10.97.0.1",
            "--verify-x509-name", "bench", "name")
    return "10.97.0.1"


def main():
    if os.geteuid() != 0:
        print("bench/tun needs root (network namespaces, TUN devices)", file=sys.stderr)
        return 77
    results, iperf_cpu = {}, {}
    b = Bench()
    try:
        results["bare veth"] = b.measure(A_IP)
        iperf_cpu["bare veth"] = b.iperf_cpu
        rows = (("tn-tun", tn_tun, None),
                ("tn-tun chacha20-poly1305", lambda b: tn_tun(b, cipher="chacha20-poly1305"), None),
                ("wireguard-go", wireguard, wireguard_down),
                ("OpenVPN AES-256-GCM", openvpn, None),
                ("tn-tun" + FULL, lambda b: tn_tun(b, full=True), None),
                ("wireguard-go" + FULL, lambda b: wireguard(b, full=True), wireguard_down))
        for name, up, down in rows:
            if ONLY and name not in ONLY:
                continue
            try:
                dst = up(b)
                results[name] = b.measure(dst, b.i if dst == I_IP else None)
                iperf_cpu[name] = b.iperf_cpu
            except Exception as e:  # one anchor failing must not hide the others
                print(f"{name}: failed: {e}", file=sys.stderr)
            finally:
                if down:
                    down(b)
                b.stop_all()
    finally:
        b.close()
    report(results)
    print("iperf3 CPU % (sender/receiver): " + ", ".join(f"{k} {s:.0f}/{r:.0f}" for k, (s, r) in iperf_cpu.items()))
    return 0


def report(results):
    """The table; each row's ratio is to tn-tun on the same path (subnet only, or full tunnel + NAT)."""
    # CPU: both daemons together during the iperf3 run, % of one core (wireguard-go forks away: -).
    # veth x: each row's throughput over the bare veth's in the same run (issue 23 aims tn-tun at 0.5).
    print(f"{'path':<29}{'Gbit/s':>9}{'ping p50 ms':>13}{'tn-tun x':>10}{'veth x':>8}{'daemon CPU %':>14}")
    veth = results.get("bare veth", (0, 0, 0))[0]
    for name, (gbit, rtt, cpu) in results.items():
        tn = results.get("tn-tun" + FULL if name.endswith(FULL) else "tn-tun")
        ratio = f"{tn[0] / gbit:.2f}" if tn and not name.startswith("tn-tun") else "-"
        shown = f"{cpu:.0f}" if name.startswith("tn-tun") or name.startswith("OpenVPN") else "-"
        of_veth = f"{gbit / veth:.2f}" if veth else "-"
        print(f"{name:<29}{gbit:>9.2f}{rtt:>13.3f}{ratio:>10}{of_veth:>8}{shown:>14}")
    for name in ("tn-tun", "wireguard-go"):
        if name in results and name + FULL in results:
            full, sub = results[name + FULL], results[name]
            print(f"{name}: full tunnel + NAT / subnet only: throughput {full[0] / sub[0]:.2f}, "
                  f"ping p50 {full[1] / sub[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
