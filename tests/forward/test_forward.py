"""tn-forward against a real sshd: -L/-R/-D data paths, half-close, concurrency, reload, errors."""
import concurrent.futures
import glob
import hashlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest

import dropbear_server
import harness
from fwdlib import FORWARD, Forward, echo_once, roundtrip
from harness import EchoHashServer


@pytest.fixture
def setup(client, sshd):
    client.trust(sshd)
    sshd.user.authorize(client.key())
    echo = EchoHashServer()
    yield client, sshd, echo
    echo.close()


def test_local_and_remote_carry_64_mib_both_ways(setup):
    client, sshd, echo = setup
    lport, rport = harness.free_port(), harness.free_port()
    f = Forward(client, sshd, "-L", f"{lport}:127.0.0.1:{echo.port}", "-R", f"{rport}:127.0.0.1:{echo.port}")
    try:
        f.wait_ready(2)
        payload = os.urandom(64 << 20)
        want = hashlib.sha256(payload).hexdigest()
        for port in (lport, rport):
            got = roundtrip(port, payload, timeout=120)
            assert len(got) == len(payload) and hashlib.sha256(got).hexdigest() == want, port
    finally:
        assert f.stop() == 0, f.log()


def test_100_concurrent_connections(setup):
    client, sshd, echo = setup
    lport, rport = harness.free_port(), harness.free_port()
    f = Forward(client, sshd, "-L", f"{lport}:127.0.0.1:{echo.port}", "-R", f"{rport}:127.0.0.1:{echo.port}")
    try:
        f.wait_ready(2)
        for port in (lport, rport):
            socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(100)]
            for i, s in enumerate(socks):
                s.sendall(f"conn-{i:03d}".encode())
            for i, s in enumerate(socks):
                got = b""
                while len(got) < 8:
                    got += s.recv(100)
                assert got == f"conn-{i:03d}".encode()
                s.close()
    finally:
        f.stop()


def _cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_idle_forwarder_sleeps(setup):
    """Connected, forwards up, idle connections open: the loop must block in poll, not spin."""
    client, sshd, echo = setup
    lport, rport = harness.free_port(), harness.free_port()
    f = Forward(client, sshd, "-L", f"{lport}:127.0.0.1:{echo.port}", "-R", f"{rport}:127.0.0.1:{echo.port}")
    try:
        f.wait_ready(2)
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for port in (lport, rport)]
        for s in idle:
            s.sendall(b"ping")
            assert s.recv(4) == b"ping"
        before, t0 = _cpu_seconds(f.proc.pid), time.monotonic()
        time.sleep(4)
        used, wall = _cpu_seconds(f.proc.pid) - before, time.monotonic() - t0
        # A spinning loop burns a whole core (or its fair share of a loaded one); a sleeping one wakes
        # about once a second. 10% of the wall time separates the two on any machine.
        assert used < 0.1 * wall, f"{used:.2f} s of CPU in {wall:.1f} s idle"
        for s in idle:
            s.close()
    finally:
        assert f.stop() == 0, f.log()


def test_login_signs_with_the_first_key_at_once(setup):
    """No agent: the first identity is offered signed, without the 'none' and key-query round trips."""
    client, sshd, echo = setup
    port = harness.free_port()
    f = Forward(client, sshd, "-L", f"{port}:127.0.0.1:{echo.port}")
    try:
        f.wait_ready(1)
        assert echo_once(port) == b"ping"
    finally:
        assert f.stop() == 0, f.log()
    log = sshd.log()
    assert log.count("Accepted publickey") == 1, log
    assert "Postponed publickey" not in log, log  # sshd logs this for a query without a signature


def test_half_close_still_gets_the_reply(client, sshd):
    client.trust(sshd)
    sshd.user.authorize(client.key())
    digest = EchoHashServer(digest=True)
    lport, rport = harness.free_port(), harness.free_port()
    f = Forward(client, sshd, "-L", f"{lport}:127.0.0.1:{digest.port}", "-R", f"{rport}:127.0.0.1:{digest.port}")
    try:
        f.wait_ready(2)
        data = os.urandom(3 << 20)
        for port in (lport, rport):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)  # our write side is done; the answer must still arrive
            got = b""
            while True:
                d = s.recv(100)
                if not d:
                    break
                got += d
            s.close()
            assert got.decode() == hashlib.sha256(data).hexdigest(), port
    finally:
        f.stop()
        digest.close()


def test_socks5_with_curl(setup, tmp_path):
    client, sshd, _ = setup
    (tmp_path / "hello.txt").write_text("hello through socks\n")
    http_port = harness.free_port()
    http = subprocess.Popen(["/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", str(http_port)],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dport = harness.free_port()
    f = Forward(client, sshd, "-D", str(dport))
    try:
        harness.wait_port(http_port, proc=http)
        f.wait_ready(1)
        r = subprocess.run(["curl", "-sS", "--max-time", "20", "--socks5-hostname", f"127.0.0.1:{dport}",
                            f"http://localhost:{http_port}/hello.txt"], capture_output=True, text=True)
        assert r.stdout == "hello through socks\n", r.stderr
        r = subprocess.run(["curl", "-sS", "--max-time", "20", "--socks5", f"127.0.0.1:{dport}",
                            f"http://127.0.0.1:{http_port}/hello.txt"], capture_output=True, text=True)
        assert r.stdout == "hello through socks\n", r.stderr
        # A closed target port is a SOCKS failure reply, not a hang.
        closed = harness.free_port()
        r = subprocess.run(["curl", "-sS", "--max-time", "20", "--socks5-hostname", f"127.0.0.1:{dport}",
                            f"http://localhost:{closed}/"], capture_output=True, text=True)
        assert r.returncode != 0 and r.returncode != 28, r.stderr
    finally:
        f.stop()
        harness.stop_process(http)


def test_sshd_restart_is_survived(setup):
    client, sshd, echo = setup
    rport = harness.free_port()
    f = Forward(client, sshd, "-R", f"{rport}:127.0.0.1:{echo.port}")
    try:
        f.wait_ready(1)
        assert echo_once(rport) == b"ping"
        sshd.kill_all()
        f.wait_event("lost", timeout=30)
        time.sleep(1.0)
        sshd.start(port=sshd.port)
        up = time.monotonic()
        f.wait_event("forward_up", count=2, timeout=30)
        print(f"\n-R back {time.monotonic() - up:.2f} s after sshd returned")
        assert echo_once(rport) == b"ping"
    finally:
        f.stop()


def test_once_exits_75_at_first_loss(setup):
    client, sshd, echo = setup
    f = Forward(client, sshd, "--once", "-R", f"{harness.free_port()}:127.0.0.1:{echo.port}")
    f.wait_ready(1)
    sshd.kill_all()
    assert f.proc.wait(timeout=30) == 75
    f.stop()
    # It exits; it does not announce a reconnect it will never make.
    assert "lost" in f.kinds() and "reconnecting" not in f.kinds(), f.events
    assert "reconnecting" not in f.log(), f.log()


def test_wrong_key_is_77_without_retry(client, sshd):
    client.trust(sshd)
    client.key()  # not authorized on the server
    t0 = time.monotonic()
    r = client.run([FORWARD, "-p", str(sshd.port), "-L", f"{harness.free_port()}:127.0.0.1:22",
                    f"{sshd.user.name}@127.0.0.1"], timeout=60)
    assert r.returncode == 77, r.stderr
    assert "authentication refused" in r.stderr
    assert r.stderr.count("connecting") <= 1 and "reconnecting" not in r.stderr
    assert time.monotonic() - t0 < 30  # it did not loop (a hang check, not a speed check)


def test_unknown_host_key_is_77(client, sshd):
    sshd.user.authorize(client.key())
    r = client.run([FORWARD, "-p", str(sshd.port), "-L", f"{harness.free_port()}:127.0.0.1:22",
                    f"{sshd.user.name}@127.0.0.1"], timeout=60)
    assert r.returncode == 77 and "--accept-new" in r.stderr, r.stderr


def test_second_instance_refused(setup, tmp_path):
    client, sshd, echo = setup
    cfg = tmp_path / "fwd.toml"
    cfg.write_text(f'[server]\nhost = "{sshd.user.name}@127.0.0.1"\nport = {sshd.port}\n'
                   f'[[forward]]\nlocal = "{harness.free_port()}:127.0.0.1:{echo.port}"\n')
    f = Forward(client, None, config=str(cfg))
    try:
        f.wait_ready(1)
        r = client.run([FORWARD, "-c", str(cfg)], timeout=30)
        assert r.returncode == 75 and "another tn-forward" in r.stderr, r.stderr
    finally:
        f.stop()


def test_sighup_reload_keeps_unchanged_forwards(setup, tmp_path):
    client, sshd, echo = setup
    keep, drop, add, add_local = harness.free_port(), harness.free_port(), harness.free_port(), harness.free_port()
    cfg = tmp_path / "fwd.toml"
    head = f'[server]\nhost = "{sshd.user.name}@127.0.0.1"\nport = {sshd.port}\n'
    cfg.write_text(head + f'[[forward]]\nlocal = "{keep}:127.0.0.1:{echo.port}"\n'
                          f'[[forward]]\nremote = "{drop}:127.0.0.1:{echo.port}"\n')
    f = Forward(client, None, config=str(cfg))
    try:
        f.wait_ready(2)
        held = socket.create_connection(("127.0.0.1", keep), timeout=10)
        held.sendall(b"before")
        assert held.recv(100) == b"before"
        cfg.write_text(head + f'[[forward]]\nlocal = "{keep}:127.0.0.1:{echo.port}"\n'
                              f'[[forward]]\nremote = "{add}:127.0.0.1:{echo.port}"\n'
                              f'[[forward]]\nlocal = "{add_local}:127.0.0.1:{echo.port}"\n')
        f.proc.send_signal(signal.SIGHUP)
        f.wait_event("forward_up", timeout=30, port=add)
        f.wait_event("forward_up", timeout=30, port=add_local)  # added -L forwards are announced too
        assert echo_once(add_local) == b"ping"
        held.sendall(b"after")  # the connection through the unchanged forward survived
        assert held.recv(100) == b"after"
        held.close()
        assert echo_once(add) == b"ping"
        with pytest.raises(OSError):
            echo_once(drop, timeout=2)
        assert "lost" not in [e["event"] for e in f.events]
    finally:
        f.stop()


def test_sigterm_stops_cleanly(setup):
    client, sshd, echo = setup
    f = Forward(client, sshd, "-L", f"{harness.free_port()}:127.0.0.1:{echo.port}")
    f.wait_ready(1)
    f.proc.send_signal(signal.SIGTERM)
    assert f.proc.wait(timeout=10) == 0
    f.wait_event("stopped", timeout=5)
    f.stop()


def test_cli_and_config_errors(client, tmp_path):
    assert client.run([FORWARD, "--version"]).stdout.startswith("tn-forward ")
    r = client.run([FORWARD, "-L", "80:h", "host"])
    assert r.returncode == 64 and "expected [bind:]port:host:hostport" in r.stderr
    r = client.run([FORWARD, "host"])
    assert r.returncode == 64 and "nothing to forward" in r.stderr
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[server]\nhost = "h"\n[[forward]]\nlocal = "1:h:2"\nremote = "2:h:3"\n[liveness]\nkeepalve = 3\n')
    r = client.run([FORWARD, "-c", str(cfg), "--check-config"])
    assert r.returncode == 78
    assert f'{cfg}:7:1: error: unknown key "liveness.keepalve" (did you mean "keepalive"?)' in r.stderr
    assert "exactly one of local, remote, dynamic" in r.stderr


def test_example_config_is_valid(client):
    cfg = os.path.join(harness.SOURCE_ROOT, "examples/tn-forward/expose-ssh.toml")
    r = client.run([FORWARD, "-c", cfg, "--check-config"])
    assert r.returncode == 0, r.stderr


@pytest.fixture(params=["openssh", "dropbear"])
def any_server(request, client):
    """A real SSH server of each kind tn-forward must work with, the client trusted and authorized."""
    if not harness.is_root():
        pytest.skip("needs root to create a throwaway server user")
    if request.param == "dropbear" and not dropbear_server.available():
        pytest.skip("dropbear is not installed")
    server = harness.Sshd() if request.param == "openssh" else dropbear_server.Dropbear()
    try:
        server.start()
        client.trust(server)
        server.user.authorize(client.key())
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("count", [1, 2])
def test_small_keepalive_settings_keep_a_healthy_link(client, any_server, count):
    """Like ssh -o ServerAliveInterval=1 -o ServerAliveCountMax=N: a server that answers every keepalive
    is never lost. Measured in keepalive rounds (sent and answered), not in seconds."""
    echo = EchoHashServer()
    port = harness.free_port()
    f = Forward(client, any_server, "--keepalive", "1", "--keepalive-count", str(count),
                "-L", f"{port}:127.0.0.1:{echo.port}")
    try:
        f.wait_ready(1)
        rounds = 8
        f.wait_until(lambda: f.log().count("keepalive answered") >= rounds or "lost" in f.kinds(),
                     f"{rounds} answered keepalives")
        assert "lost" not in f.kinds(), f.log()
        assert f.kinds().count("connected") == 1, f.events
        assert echo_once(port) == b"ping"
    finally:
        assert f.stop() == 0, f.log()
        echo.close()


def _status(client, *args):
    return client.run([FORWARD, *args], timeout=30)


def test_status_reports_forwards_state_and_losses(setup, tmp_path):
    client, sshd, echo = setup
    lport, rport = harness.free_port(), harness.free_port()
    cfg = tmp_path / "fwd.toml"
    cfg.write_text(f'[server]\nhost = "{sshd.user.name}@127.0.0.1"\nport = {sshd.port}\n'
                   f'[[forward]]\nlocal = "{lport}:127.0.0.1:{echo.port}"\n'
                   f'[[forward]]\nremote = "{rport}:127.0.0.1:{echo.port}"\n')
    for args in (["status", "-c", str(cfg)], ["status"], ["status", "--json"]):
        r = _status(client, *args)
        assert r.returncode == 69 and "no tn-forward runs for" in r.stderr and r.stdout == "", (args, r.stderr)
    f = Forward(client, None, config=str(cfg))
    try:
        f.wait_ready(2)
        r = _status(client, "status", "--json", "-c", str(cfg))
        assert r.returncode == 0, r.stderr
        [inst] = json.loads(r.stdout)["instances"]
        assert inst["pid"] == f.proc.pid and inst["instance"] == str(cfg)
        assert inst["state"] == "connected" and inst["reconnects"] == 0 and inst["last_loss"] is None, inst
        ups = {fw["forward"]: (fw["up"], fw["port"]) for fw in inst["forwards"]}
        assert ups == {f"-L {lport}:127.0.0.1:{echo.port}": (True, lport),
                       f"-R {rport}:127.0.0.1:{echo.port}": (True, rport)}, ups
        # Text, with the common option before the subcommand, and the listing of every instance.
        for args in (["-c", str(cfg), "status"], ["status"]):
            r = _status(client, *args)
            assert r.returncode == 0 and "state:      connected" in r.stdout, r.stdout + r.stderr
            assert f"up    -R {rport}:127.0.0.1:{echo.port}" in r.stdout, r.stdout
        # A loss and the reconnect after it show up.
        sshd.kill_all()
        f.wait_event("lost", timeout=30)
        sshd.start(port=sshd.port)
        f.wait_event("forward_up", count=4, timeout=60)
        [inst] = json.loads(_status(client, "status", "--json").stdout)["instances"]
        assert inst["reconnects"] == 1 and inst["last_loss"]["reason"], inst
        # The socket: 0600 in the state dir, and another user gets nothing even if modes are loosened.
        [sock] = glob.glob(os.path.join(client.state_dir, "forward-*.sock"))
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        for d in (client.dir, client.state_dir):
            os.chmod(d, 0o711)
        os.chmod(sock, 0o666)
        ask = ("import socket,sys\ns=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(20)\n"
               "try:\n    s.sendall(b'json\\n'); print(len(s.recv(65536)))\n"
               "except (BrokenPipeError, ConnectionResetError):\n    print(0)\n")
        r = subprocess.run([sys.executable, "-c", ask, sock], user=65534, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.strip() == "0", r.stdout + r.stderr
        # A killed instance leaves a stale socket: that is "not running", not an error of ours.
        f.proc.kill()
        f.proc.wait()
        r = _status(client, "status", "-c", str(cfg))
        assert r.returncode == 69 and "no tn-forward runs for" in r.stderr, r.stderr
    finally:
        f.stop()


def test_probe_decides_liveness_without_stalling(setup):
    """--probe HOST:PORT: an address that answers keeps the link up; a closed one is a loss after
    keepalive_count failed probes (non-blocking connects inside the event loop)."""
    client, sshd, echo = setup
    closed = harness.free_port()
    for target, lost in ((echo.port, False), (closed, True)):
        port = harness.free_port()
        f = Forward(client, sshd, "--keepalive", "1", "--keepalive-count", "2", "--probe", f"127.0.0.1:{target}",
                    "-L", f"{port}:127.0.0.1:{echo.port}")
        try:
            f.wait_ready(1)
            if lost:
                assert f.wait_event("lost", timeout=60)["reason"] == f"probe 127.0.0.1:{closed} failed"
            else:
                f.wait_until(lambda: f.log().count("keepalive answered") >= 5 or "lost" in f.kinds(), "5 rounds")
                assert "lost" not in f.kinds(), f.log()
                assert echo_once(port) == b"ping"
        finally:
            assert f.stop() == 0, f.log()
