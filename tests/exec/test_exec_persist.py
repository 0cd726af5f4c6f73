"""tn-exec run --persist: one background master per target, reused through its socket in the state dir."""
import glob
import hashlib
import os
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from exec_fixtures import env as base_env, interrupt  # noqa: E402,F401
import harness  # noqa: E402  (on the path through exec_fixtures)


def masters(env):
    out = []
    for p in glob.glob(os.path.join(env.client.state_dir, "exec-*.sock.pid")):
        try:
            out.append(int(open(p).read()))
        except (OSError, ValueError):
            pass
    return out


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours does not count: reap it if it is one.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


@pytest.fixture
def env(base_env):  # noqa: F811
    yield base_env
    for pid in masters(base_env):  # stop the masters this test started, by PID
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def logins(env):
    return env.sshd.log().count("Accepted publickey")


def test_session_is_reused(env):
    before = logins(env)
    for i in range(4):
        r = env.run("run", *env.base, "--persist", "60", env.target, "--", "echo", f"run {i}")
        assert r.returncode == 0, r.stderr
        assert r.stdout == f"run {i}\n"
    assert logins(env) - before == 1
    assert len(masters(env)) == 1


def test_streams_codes_and_stdin_through_master(env):
    r = env.run("run", *env.base, "--persist", "60", env.target, "--shell", "echo out; echo err >&2; exit 5")
    assert (r.returncode, r.stdout, r.stderr) == (5, "out\n", "err\n")
    r = env.run("run", *env.base, "--persist", "60", env.target, "--shell", "kill -TERM $$")
    assert r.returncode == 143
    r = env.run("run", *env.base, "--persist", "60", "-t", "1", env.target, "sleep", "5")
    assert r.returncode == 124
    data = os.urandom(2 * 1024 * 1024)
    r = env.run("run", *env.base, "--persist", "60", env.target, "sha256sum", input=data, text=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()
    r = env.run("run", *env.base, "--persist", "60", "--env", "TN_X=a b", "--cwd", "/", env.target,
                "--shell", 'echo "$TN_X $PWD"')
    assert r.stdout == "a b /\n"


def test_master_starts_clean_of_the_clients_descriptors(env):
    """The master outlives the tn-exec that started it: it must hold none of that process's descriptors
    (a pipe it kept would never give its reader EOF), lead its own session, and have /dev/null as stdio."""
    r_end, w_end = os.pipe()  # inheritable: the client gets it as fd w_end
    try:
        e = env.client.env()
        r = subprocess.run([env.exe, "run", *env.base, "--persist", "60", env.target, "true"], env=e,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, pass_fds=(w_end,))
        assert r.returncode == 0, r.stderr
        (pid,) = masters(env)
        pipe = f"pipe:[{os.fstat(w_end).st_ino}]"
        fds = {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        assert pipe not in fds.values(), fds
        assert [fds.get(fd) for fd in (0, 1, 2)] == ["/dev/null"] * 3, fds
        assert os.getsid(pid) == pid
        os.close(w_end)
        w_end = -1
        assert os.read(r_end, 1) == b""  # EOF: no one else holds the write end
    finally:
        os.close(r_end)
        if w_end >= 0:
            os.close(w_end)


def test_master_failure_is_reported(env):
    os.unlink(env.client.known_hosts)
    r = env.run("run", *env.base, "--persist", "60", env.target, "true")
    assert r.returncode == 255
    assert "not known" in r.stderr
    assert masters(env) == []


def test_master_exits_when_idle(env):
    r = env.run("run", *env.base, "--persist", "1", env.target, "true")
    assert r.returncode == 0, r.stderr
    pids = masters(env)
    assert len(pids) == 1
    harness.wait_for(lambda: not alive(pids[0]), timeout=30, what="the idle master to exit")
    assert not glob.glob(os.path.join(env.client.state_dir, "exec-*.sock"))


def test_interrupt_reaches_the_remote_through_the_master(env):
    code, out, _ = interrupt(env, ["--persist", "60"],
                             'trap "echo got INT; exit 9" INT; echo ready; while :; do sleep 0.1; done', signal.SIGTERM)
    assert (code, out) == (9, b"got INT\n")


def test_dead_session_is_replaced_once(env):
    r = env.run("run", *env.base, "--persist", "60", "-n", env.target, "true")
    assert r.returncode == 0, r.stderr
    before = logins(env)
    # Drop the master's SSH connection on the server side: the sshd session processes of the test user
    # (children of the sshd this test started), by PID.
    out = subprocess.run(["ps", "-o", "pid=", "-u", env.sshd.user.name], capture_output=True, text=True).stdout
    for pid in out.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    r = env.run("run", *env.base, "--persist", "60", "-n", env.target, "echo", "again")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "again\n"
    assert logins(env) == before + 1


def test_refused_session_channel_is_reported_not_retried_forever():
    """The master opens a channel ahead of each request; a server that refuses session channels
    (MaxSessions 0) still gets its refusal reported on the request, with the host named."""
    from exec_fixtures import Env, harness
    if not harness.is_root():
        pytest.skip("needs root to create a throwaway sshd user")
    sshd = harness.Sshd()
    sshd.extra_config = f"Match User {sshd.user.name}\n    MaxSessions 0\n"
    sshd.start()
    client = harness.ClientHome()
    e = Env(sshd, client)
    try:
        client.trust(sshd)
        sshd.user.authorize(client.key())
        for extra in ([], ["--persist", "60"]):
            r = e.run("run", *e.base, *extra, "-n", e.target, "true", timeout=60)
            assert r.returncode == 255, (extra, r.stderr)
            assert "session channel" in r.stderr and "127.0.0.1" in r.stderr, (extra, r.stderr)
    finally:
        for pid in masters(e):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        client.close()
        sshd.close()
