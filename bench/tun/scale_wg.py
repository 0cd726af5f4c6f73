"""bench/tun/scale.py's anchor: one wireguard-go with N peers in its config, driven by wg_peers.py (N
simulated WireGuard initiators in one process) exactly as tn-tun-peers drives tn-tun: the same
namespaces, phases, inner packets and measurements."""
import json
import os
import secrets
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WG_PEERS = os.path.join(HERE, "wg_peers.py")
WG_PORT = 51821
# Debian's wireguard-go refuses to start next to a kernel with WireGuard unless told so.
WG_ENV = dict(os.environ, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD="1")


def wg_uapi(iface, text):
    """run.py's UAPI client (bench/tun/run.py reads its own argv at import, so it is imported with
    none: scale.py's options are not run.py's)."""
    saved, sys.argv = sys.argv, sys.argv[:1]
    try:
        sys.path.insert(0, HERE)
        import run  # noqa: E402
    finally:
        sys.argv = saved
    run.wg_uapi(iface, text)


def one_wg(a, net, n, work, sh, proc_stat, follow, subnet, srv_ip, sw_first, addresses):
    """Runs one N against wireguard-go; returns the measurements in scale.py's layout."""
    pairs = [l.split() for l in sh(sys.executable, WG_PEERS, "keys", str(n + 1)).stdout.splitlines() if l]
    (spriv, spub), pairs = pairs[0], pairs[1:]
    keys = os.path.join(work, "wg.keys")
    with open(keys, "w") as f:
        f.writelines(p[0] + "\n" for p in pairs)
    iface = "wgs" + secrets.token_hex(3)  # the UAPI socket lives in /var/run/wireguard, shared by all namespaces
    prefix = int(subnet.split("/")[1])
    base = subnet.split("/")[0].rsplit(".", 2)[0]  # 10.76
    log = open(os.path.join(work, "wg.log"), "w")
    srv = subprocess.Popen(["ip", "netns", "exec", net.srv, "wireguard-go", "-f", iface], stdout=log,
                           stderr=subprocess.STDOUT, env=WG_ENV)
    r = {"n": n, "window": a.window, "impl": "wireguard-go"}
    try:
        sock = f"/var/run/wireguard/{iface}.sock"
        deadline = time.monotonic() + 30
        while not os.path.exists(sock):
            if srv.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("wireguard-go did not come up: " + open(log.name).read())
            time.sleep(0.05)
        net.ns(net.srv, "ip", "addr", "add", f"{base}.0.1/{prefix}", "dev", iface)
        net.ns(net.srv, "ip", "link", "set", iface, "mtu", "1420", "up")

        def inner(i):  # the subnet's address 2 + i, as wg_peers.py numbers its peers
            k = i + 2
            return f"{base}.{k >> 8}.{k & 255}"
        conf = f"set=1\nprivate_key={spriv}\nlisten_port={WG_PORT}\n"
        conf += "".join(f"public_key={p[1]}\nallowed_ip={inner(i)}/32\n" for i, p in enumerate(pairs))
        wg_uapi(iface, conf)
        time.sleep(0.5)  # the Go runtime settles its heap after the config; RSS before the peers connect
        cpu0, rss0 = proc_stat(srv.pid)
        gen = subprocess.Popen(["ip", "netns", "exec", net.sw, sys.executable, WG_PEERS, "run",
                                "--server", f"{srv_ip}:{WG_PORT}", "--server-key", spub, "--keys", keys,
                                "--bind", sw_first, "--addresses", str(addresses), "--subnet", f"{base}.0.0/{prefix}",
                                "--size", str(a.size), "--rate", str(a.rate), "--steady-seconds", str(a.seconds),
                                "--window", str(a.window), "--flood-seconds", str(a.seconds),
                                "--connect-timeout", "300"], stdout=subprocess.PIPE, text=True)
        follow(a, gen, srv.pid, cpu0, rss0, r)
        link = json.loads(net.ns(net.srv, "ip", "-s", "-j", "link", "show", iface).stdout)[0]
        r["tun_tx_dropped"] = link["stats64"]["tx"]["dropped"]
        if gen.wait() != 0:
            raise RuntimeError(f"wg_peers.py exited {gen.returncode}")
    finally:
        net.ns(net.srv, "ip", "link", "del", iface, check=False)  # wireguard-go exits when its device goes
        try:
            srv.wait(10)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()
        log.close()
    return r
