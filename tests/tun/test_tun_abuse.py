"""tn-tun server under abuse, real processes in network namespaces (issue 16 items 10 and "keep it so"):
a flood of random datagrams leaves a legitimate client able to handshake and pass traffic and leaks
neither descriptors nor memory; a captured initiation replayed after a server restart is refused
because peers' handshake timestamps are kept across restarts (0600 file)."""
import os
import random
import stat
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import tun_net  # noqa: E402

PORT = 51820
HERE = os.path.dirname(__file__)


@pytest.fixture(scope="module")
def net():
    tun_net.skip_unless_possible()
    t = tun_net.Topology(names=("srv", "c1", "fl"))
    try:
        t.server_pub = t.keypair("server")
        t.c1_pub = c1_pub = t.keypair("c1")
        t.server_conf = t.write("server.toml", f"""[server]
listen = "0.0.0.0:{PORT}"
private_key_file = "server.key"
tun = "tn0"
subnet = "10.99.0.0/24"

[[peer]]
name = "c1"
public_key = "{c1_pub}"
""")
        t.write("c1.toml", f"""[client]
server = "{t.addr['srv']}:{PORT}"
private_key_file = "c1.key"
server_public_key = "{t.server_pub}"
tun = "tn0"
persistent_keepalive = 1
""")
        t.start("server", "srv", "server", "-c", t.server_conf)
        t.wait_for("the control socket", lambda: t.status())
        yield t
    finally:
        t.close()


def ping(t, host, dst, count=3):
    return t.exec(host, "ping", "-c", str(count), "-i", "0.2", "-W", "2", dst, check=False)


def server_pid(t):
    return t.procs["server"].pid  # `ip netns exec` execs the tool: the same process


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# Random datagrams of every kind: random bytes, each message type with a valid header and random
# body, right and wrong sizes, empty ones. A fixed seed so a failure can be replayed.
FLOOD = """
import os, random, signal, socket, sys, time
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
rng = random.Random(int(sys.argv[3]))
end = time.monotonic() + 120  # bounded in time as well as in count
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sizes = [0, 1, 3, 4, 31, 32, 33, 63, 64, 65, 75, 76, 77, 131, 132, 133, 147, 148, 149, 1500, 9048, 9049, 65000]
n = 0
for i in range(int(sys.argv[2])):
    if stop or time.monotonic() > end:
        break
    size = rng.choice(sizes) if rng.random() < 0.5 else rng.randrange(0, 2000)
    body = bytearray(rng.randbytes(size))
    if size >= 4 and rng.random() < 0.7:
        body[0] = rng.choice([1, 2, 3, 4, 5, 0, 6, 255])
        body[1:4] = b"\\0\\0\\0" if rng.random() < 0.8 else body[1:4]
    try:
        s.sendto(bytes(body), (sys.argv[1], 51820))
        n += 1
    except OSError:
        pass
    if i % 50 == 0:
        time.sleep(0.002)
print(n, flush=True)
"""


def test_random_datagram_flood_leaves_service_and_leaks_nothing(net):
    pid = server_pid(net)
    fds_before = fds(pid)
    flood = subprocess.Popen(["ip", "netns", "exec", net.ns["fl"].name, sys.executable, "-c", FLOOD,
                              net.addr["srv"], "1000000", str(random.randrange(1 << 30))],
                             stdout=subprocess.PIPE, text=True)
    try:
        net.wait_for("the flood arriving", lambda: net.status()["dropped"]["malformed"] > 1000, timeout=60)
        rss_before = rss_kib(pid)  # the buffers the flood touches are in by now
        net.start("c1", "c1", "client", "-c", net.path("c1.toml"))
        net.wait_for("c1 up during the flood", lambda: net.tun_address("c1"), timeout=60)
        r = ping(net, "c1", "10.99.0.1")
        assert r.returncode == 0, r.stdout + r.stderr
        # Some more of it (a bounded count) with the session up, which must carry on through it.
        net.wait_for("30,000 flood datagrams", lambda: net.status()["dropped"]["malformed"] >= 30000, timeout=120)
        r = ping(net, "c1", "10.99.0.1")
        assert r.returncode == 0, r.stdout + r.stderr
        still_flooding = flood.poll() is None
    finally:
        flood.terminate()  # the flood runs until told to stop (or its count or time runs out)
        out, _ = flood.communicate(timeout=60)
    assert still_flooding, "the flood ended before c1 connected and passed traffic"
    sent = int(out)
    assert sent > 1000
    assert net.procs["server"].poll() is None, net.log("server")
    r = ping(net, "c1", "10.99.0.1")
    assert r.returncode == 0, r.stdout + r.stderr
    st = net.status()
    assert st["peers"][0]["connected"]
    # Nothing kept per datagram: the same descriptors, and memory within a few MiB of before.
    assert fds(pid) == fds_before
    assert rss_kib(pid) - rss_before < 8192, (sent, rss_before, rss_kib(pid))
    print(f"flood: {sent} datagrams, dropped malformed {st['dropped']['malformed']}, rejected handshakes "
          f"{st['rejected_handshakes']}, fds {fds(pid)}, RSS {rss_before} -> {rss_kib(pid)} KiB")


def test_replayed_initiation_after_a_server_restart_is_refused(net):
    sniffer = subprocess.Popen(["ip", "netns", "exec", net.ns["srv"].name, sys.executable,
                                os.path.join(HERE, "sniff.py"), net.dev["srv"], str(PORT), "30", "initiation"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert sniffer.stdout.readline().strip() == "ready"
        net.stop("c1")
        net.start("c1", "c1", "client", "-c", net.path("c1.toml"))
        out, _ = sniffer.communicate(timeout=60)
        captured = bytes.fromhex(out.strip())
    finally:
        if sniffer.poll() is None:
            sniffer.kill()
            sniffer.wait()
    net.wait_for("c1 up", lambda: net.tun_address("c1"))
    net.wait_for("c1 connected", lambda: net.status()["peers"][0]["connected"])
    net.stop("server")
    net.start("server", "srv", "server", "-c", net.server_conf)
    net.wait_for("c1 back", lambda: net.status()["peers"][0]["connected"], timeout=40)
    replay = ("import socket\n"
              "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
              f"s.sendto(bytes.fromhex('{captured.hex()}'),('{net.addr['srv']}',{PORT}))\n")
    net.exec("fl", sys.executable, "-c", replay)
    st = net.wait_for("the replay refused", lambda: (s := net.status())["rejected_handshakes"] > 0 and s)
    assert [r["reason"] for r in st["rejections"]] == ["replayed_timestamp"]
    assert ping(net, "c1", "10.99.0.1").returncode == 0
    state = net.path("state-server")
    files = [f for f in os.listdir(state) if f.endswith(".timestamps")]
    assert len(files) == 1
    record = os.path.join(state, files[0])
    assert stat.S_IMODE(os.stat(record).st_mode) == 0o600
    # Written whole at the start, then a line appended per accepted handshake: all of them c1's.
    with open(record) as f:
        lines = f.read().splitlines()
    assert lines and {line.split()[0] for line in lines} == {net.c1_pub}, lines

    # A record that is there but cannot be read stops the start: going on would forget the timestamps.
    net.stop("server")
    os.rename(record, record + ".kept")
    os.mkdir(record)
    try:
        net.start("server", "srv", "server", "-c", net.server_conf)
        assert net.procs["server"].wait(timeout=30) == 74
        assert "cannot read the handshake timestamps in " + record in net.log("server")
    finally:
        os.rmdir(record)
        os.rename(record + ".kept", record)
    net.start("server", "srv", "server", "-c", net.server_conf)
    net.wait_for("c1 back", lambda: net.status()["peers"][0]["connected"], timeout=40)


def test_keygen_writes_0600_files_and_warns_on_a_terminal(tmp_path):
    import pty
    tool = tun_net.harness.tool("tn-tun")
    key = tmp_path / "k"
    old = os.umask(0o022)
    try:
        r = subprocess.run([tool, "keygen", "-o", str(key)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
        assert len(key.read_text().strip()) == 44
        r = subprocess.run([tool, "keygen", "-o", str(key)], capture_output=True, text=True)
        assert r.returncode == 74 and str(key) in r.stderr  # never overwrites a key
        # `tn-tun keygen > file` under umask 022: the shell makes it 0644, tn-tun narrows it.
        with open(tmp_path / "redirected", "w") as out:
            subprocess.run([tool, "keygen"], stdout=out, check=True)
        assert stat.S_IMODE(os.stat(tmp_path / "redirected").st_mode) == 0o600
    finally:
        os.umask(old)
    primary, secondary = pty.openpty()
    try:
        r = subprocess.run([tool, "keygen"], stdout=secondary, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(secondary)
        os.close(primary)
    assert r.returncode == 0 and "terminal" in r.stderr


def test_a_key_file_others_can_read_is_warned_about(tmp_path):
    tool = tun_net.harness.tool("tn-tun")
    subprocess.run([tool, "keygen", "-o", str(tmp_path / "k")], check=True)
    conf = tmp_path / "c.toml"
    conf.write_text('[client]\nserver = "127.0.0.1:51820"\nprivate_key_file = "k"\n'
                    'server_public_key = "79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a"\n')
    pub = subprocess.run([tool, "pubkey"], stdin=open(tmp_path / "k"), capture_output=True, text=True).stdout.strip()
    conf.write_text(conf.read_text().replace("79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a", pub))
    r = subprocess.run([tool, "client", "-c", str(conf), "--check-config"], capture_output=True, text=True)
    assert r.returncode == 0 and "readable by" not in r.stderr, r.stderr
    os.chmod(tmp_path / "k", 0o644)
    r = subprocess.run([tool, "client", "-c", str(conf), "--check-config"], capture_output=True, text=True)
    assert r.returncode == 0 and "readable by others (mode 0644)" in r.stderr, r.stderr
