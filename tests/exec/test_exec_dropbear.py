"""tn-exec against Dropbear, the second SSH server: runs work, and `run -t` ends the remote command
although Dropbear ignores the signal request OpenSSH honours."""
import contextlib
import glob
import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402
from dropbear_server import Dropbear, available  # noqa: E402
from exec_fixtures import Env  # noqa: E402


@pytest.fixture
def env():
    if not harness.is_root():
        pytest.skip("needs root to create a throwaway user")
    if not available():
        pytest.skip("dropbear is not installed")
    server = Dropbear().start()
    client = harness.ClientHome()
    try:
        client.trust(server)
        server.user.authorize(client.key())
        yield Env(server, client)
    finally:
        for pidfile in glob.glob(os.path.join(client.state_dir, "exec-*.sock.pid")):  # our --persist masters
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(open(pidfile).read()), signal.SIGTERM)
        for pid in user_pids(server.user.uid):  # whatever of the test user's is left, by PID
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        client.close()
        server.close()


def user_pids(uid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.stat(f"/proc/{d}").st_uid == uid:
                    out.append(int(d))
            except FileNotFoundError:
                pass
    return out


def running_with(uid, marker):
    """PIDs of the user's live processes whose command line holds `marker` (zombies do not count)."""
    found = []
    for pid in user_pids(uid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{pid}/status") as f:
                zombie = "State:\tZ" in f.read()
        except OSError:
            continue
        if marker.encode() in cmd and not zombie:
            found.append(pid)
    return found


def test_run_streams_and_exit_status(env):
    r = env.run("run", *env.base, env.target, "--shell", "echo out; echo err >&2; exit 7")
    assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n")


@pytest.mark.parametrize("persist", [False, True])
def test_timeout_ends_the_remote_command(env, persist):
    marker = f"tn-dropbear-{os.getpid()}-{int(persist)}"
    extra = ["--persist", "30"] if persist else []
    # A child of the shell, not the shell itself: the whole group must go.
    r = env.run("run", *env.base, *extra, "-t", "1", env.target, "--shell",
                f"sh -c 'sleep 600; true' {marker} & wait # {marker}")
    assert r.returncode == 124, r.stderr
    # Wait on the condition; 60 s is only the give-up point of a command that would run 600 s.
    harness.wait_for(lambda: running_with(env.sshd.user.uid, marker) == [], timeout=60,
                     what="the remote command's group to end")
