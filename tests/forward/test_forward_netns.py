"""tn-forward through a real link outage: sshd lives in a network namespace reached over a veth pair;
the link goes down for 20 s and comes back, and the -R forward must work again by itself."""
import random
import signal
import subprocess
import time

import harness
from fwdlib import Forward

PROBE = "import socket,sys; s=socket.create_connection(('127.0.0.1',int(sys.argv[1])),timeout=2); " \
        "s.sendall(b'ping'); sys.exit(0 if s.recv(4)==b'ping' else 1)"


def remote_echo_ok(ns, port):
    r = subprocess.run(["ip", "netns", "exec", ns.name, "/usr/bin/python3", "-c", PROBE, str(port)],
                       capture_output=True, timeout=10)
    return r.returncode == 0


def test_remote_forward_recovers_after_20s_link_loss(client, netns_sshd):
    ns, host_dev, sshd = netns_sshd
    client.trust(sshd)
    sshd.user.authorize(client.key())
    echo = harness.EchoHashServer()
    rport = random.randint(20000, 30000)
    # Keepalives every 2 s, 3 may go unanswered: lost within 8 s of silence, well inside the outage
    # (the defaults take 20 s, as long as the outage itself).
    f = Forward(client, sshd, "--keepalive", "2", "-R", f"{rport}:127.0.0.1:{echo.port}")
    try:
        f.wait_ready(1)
        assert remote_echo_ok(ns, rport)
        subprocess.run(["ip", "link", "set", host_dev, "down"], check=True)
        time.sleep(20)
        subprocess.run(["ip", "link", "set", host_dev, "up"], check=True)
        up = time.monotonic()
        try:
            harness.wait_for(lambda: remote_echo_ok(ns, rport), timeout=90, what="the -R forward after the link returned")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{f.log()}") from None
        print(f"\n-R forward works again {time.monotonic() - up:.2f} s after the link returned")
        kinds = [e["event"] for e in f.events]
        assert "lost" in kinds and kinds.count("connected") >= 2, kinds
    finally:
        assert f.stop() == 0
        echo.close()


def test_sigterm_is_served_while_a_bind_waits_on_a_dead_link(client, netns_sshd):
    """A -R port someone else holds on the server is asked for again every 250 ms. When the link dies
    under such a request, the loop must not wait for the answer: SIGTERM is served at once, not after
    --connect-timeout (120 s here)."""
    ns, host_dev, sshd = netns_sshd
    client.trust(sshd)
    sshd.user.authorize(client.key())
    held = random.randint(30001, 40000)
    holder = subprocess.Popen(["ip", "netns", "exec", ns.name, "/usr/bin/python3", "-c",
                               "import socket,sys,time\nheld=[]\n"
                               "for fam, addr in ((socket.AF_INET, '127.0.0.1'), (socket.AF_INET6, '::1')):\n"
                               "    s=socket.socket(fam); s.bind((addr, int(sys.argv[1]))); s.listen(); held.append(s)\n"
                               "print('held', flush=True); time.sleep(600)\n", str(held)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    f = Forward(client, sshd, "--connect-timeout", "120", "--keepalive", "60", "-R", f"{held}:127.0.0.1:9")
    try:
        f.wait_until(lambda: "server refused" in f.log(), "a refused bind")
        subprocess.run(["ip", "link", "set", host_dev, "down"], check=True)
        asked = f.log().count("requesting ")
        f.wait_until(lambda: f.log().count("requesting ") > asked, "a bind request after the link died")
        f.proc.send_signal(signal.SIGTERM)
        # A hang check, not a speed check: a loop stuck in the request would sit out the 120 s.
        assert f.proc.wait(timeout=60) == 0, f.log()
    finally:
        f.stop()
        harness.stop_process(holder)
