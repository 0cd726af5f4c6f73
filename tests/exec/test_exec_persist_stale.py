"""tn-exec --persist meets a master of another protocol version (left by an older tn-exec): it stops it
and goes on with a new master when the old one is provably ours, and refuses clearly otherwise."""
import glob
import os
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from exec_fixtures import env as base_env  # noqa: E402,F401
import harness  # noqa: E402  (on the path through exec_fixtures)
from test_exec_persist import alive, env, masters  # noqa: E402,F401,F811  (env stops the masters by PID)

FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_old_master.py")


def gone(pid, timeout=10.0):
    return harness.wait_for(lambda: not harness.alive(pid), timeout=timeout, what=f"process {pid} to exit")


def socket_of_a_master(env):
    """Starts a real master, stops it, and returns the socket path it used (the one tn-exec computes)."""
    r = env.run("run", *env.base, "--persist", "60", "-n", env.target, "true")
    assert r.returncode == 0, r.stderr
    (sock,) = glob.glob(os.path.join(env.client.state_dir, "exec-*.sock"))
    (pid,) = masters(env)
    os.kill(pid, signal.SIGTERM)
    assert gone(pid)
    os.unlink(sock + ".pid")  # SIGTERM left it; the fake writes its own
    return sock


@pytest.fixture
def fake(env):
    procs = []

    def start(sock, *extra):
        p = subprocess.Popen(["/usr/bin/python3", FAKE, "__master", "--socket", sock, *extra],
                             stdout=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stdout.readline() == "ready\n"
        return p
    yield start
    for p in procs:  # by PID, and only the ones this test started
        if p.poll() is None:
            p.kill()
        p.wait()


def test_an_old_master_of_ours_is_replaced(env, fake):
    sock = socket_of_a_master(env)
    old = fake(sock)
    r = env.run("run", *env.base, "--persist", "60", env.target, "--", "echo", "hi")
    assert (r.returncode, r.stdout, r.stderr) == (0, "hi\n", "")
    assert old.wait(timeout=10) == -signal.SIGTERM
    assert old.stdout.read() == "request\n"  # it was asked once and ran nothing
    (new,) = masters(env)
    assert new != old.pid and alive(new)
    # The new master serves the next calls as usual.
    r = env.run("run", *env.base, "--persist", "60", "-n", env.target, "--", "echo", "again")
    assert (r.returncode, r.stdout) == (0, "again\n")
    assert masters(env) == [new]


def test_a_transfer_replaces_it_too(env, fake, tmp_path):
    sock = socket_of_a_master(env)
    old = fake(sock)
    src = tmp_path / "data.txt"
    src.write_text("payload\n")
    r = env.run("put", *env.base, "--persist", "60", str(src), f"{env.target}:data.txt")
    assert r.returncode == 0, r.stderr
    assert open(env.remote("data.txt")).read() == "payload\n"
    assert old.wait(timeout=10) == -signal.SIGTERM


def test_a_process_that_is_not_provably_ours_is_left_alone(env, fake):
    sock = socket_of_a_master(env)
    # Nothing beside the socket names it: it may be anyone's, so it is reported, not signalled.
    stranger = fake(sock, "--no-pid-file")
    r = env.run("run", *env.base, "--persist", "60", "-n", env.target, "true")
    assert r.returncode == 255, r.stderr
    assert f"is served by PID {stranger.pid} in protocol TNX1" in r.stderr
    assert "no pid file" in r.stderr and "stop it and retry" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    time.sleep(0.2)
    assert stranger.poll() is None


def test_a_newer_versions_master_is_not_downgraded(env, fake):
    sock = socket_of_a_master(env)
    newer = fake(sock, "--protocol", "TNX9")
    r = env.run("run", *env.base, "--persist", "60", "-n", env.target, "true")
    assert r.returncode == 255, r.stderr
    assert f"served by a newer tn-exec's master (PID {newer.pid}, protocol TNX9)" in r.stderr
    time.sleep(0.2)
    assert newer.poll() is None
