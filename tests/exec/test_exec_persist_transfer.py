"""tn-exec put/get --persist: transfers through the background master's session (one login for many
calls), relative local paths resolved in the caller's directory, errors and the one retry."""
import os
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from exec_fixtures import env as base_env  # noqa: E402,F401
from test_exec_persist import env, logins, masters  # noqa: E402,F401,F811  (env stops the masters by PID)
from test_exec_transfer import local, sha, tree_state, write_random  # noqa: E402,F401


def run_in(env, cwd, *args):
    return subprocess.run([env.exe, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=env.client.env(), stdin=subprocess.DEVNULL)


def test_put_get_and_trees_share_one_login(env, local):
    before = logins(env)
    big = os.path.join(local, "big.bin")
    write_random(big, 8 * 1024 * 1024 + 3)
    os.chmod(big, 0o640)
    os.utime(big, (1_600_000_000, 1_600_000_000))
    # Relative local names: the master runs elsewhere, the caller's directory must count.
    r = run_in(env, local, "put", *env.base, "--persist", "60", "big.bin", f"{env.target}:big.bin")
    assert r.returncode == 0, r.stderr
    assert (r.stdout, r.stderr) == ("", "")
    st = os.stat(env.remote("big.bin"))
    assert sha(env.remote("big.bin")) == sha(big)
    assert (st.st_mode & 0o7777, int(st.st_mtime)) == (0o640, 1_600_000_000)

    os.makedirs(os.path.join(local, "back"))
    r = run_in(env, local, "get", *env.base, "--persist", "60", f"{env.target}:big.bin", "back/")
    assert r.returncode == 0, r.stderr
    assert sha(os.path.join(local, "back", "big.bin")) == sha(big)

    tree = os.path.join(local, "tree")
    for i in range(30):
        d = os.path.join(tree, f"d{i % 3}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f {i}.txt"), "wb") as f:
            f.write(os.urandom(100 + i))
        os.chmod(os.path.join(d, f"f {i}.txt"), 0o600 + (i % 2) * 0o44)
    r = run_in(env, local, "put", *env.base, "--persist", "60", "-r", "tree", f"{env.target}:tree-copy")
    assert r.returncode == 0, r.stderr
    assert tree_state(env.remote("tree-copy")) == tree_state(tree)
    r = run_in(env, local, "get", *env.base, "--persist", "60", "-r", f"{env.target}:tree-copy", "tree-back")
    assert r.returncode == 0, r.stderr
    assert tree_state(os.path.join(local, "tree-back")) == tree_state(tree)

    r = run_in(env, local, "run", *env.base, "--persist", "60", "-n", env.target, "--", "test", "-f", "tree-copy/d0/f 0.txt")
    assert r.returncode == 0, r.stderr
    assert logins(env) - before == 1
    assert len(masters(env)) == 1


def test_errors_name_host_and_path_and_keep_the_master(env, local):
    r = run_in(env, local, "get", *env.base, "--persist", "60", f"{env.target}:no/such/file", "x")
    assert r.returncode == 255
    assert "no/such/file" in r.stderr and "127.0.0.1" in r.stderr, r.stderr
    r = run_in(env, local, "put", *env.base, "--persist", "60", "missing-local", f"{env.target}:x")
    assert r.returncode == 255
    assert "missing-local" in r.stderr, r.stderr
    # The master survives its requests' failures and serves the next one.
    with open(os.path.join(local, "ok.txt"), "w") as f:
        f.write("fine\n")
    r = run_in(env, local, "put", *env.base, "--persist", "60", "ok.txt", f"{env.target}:ok.txt")
    assert r.returncode == 0, r.stderr
    assert open(env.remote("ok.txt")).read() == "fine\n"
    assert len(masters(env)) == 1


def test_dead_session_is_replaced_for_a_transfer(env, local):
    with open(os.path.join(local, "a.txt"), "w") as f:
        f.write("a\n")
    r = run_in(env, local, "put", *env.base, "--persist", "60", "a.txt", f"{env.target}:a.txt")
    assert r.returncode == 0, r.stderr
    before = logins(env)
    out = subprocess.run(["ps", "-o", "pid=", "-u", env.sshd.user.name], capture_output=True, text=True).stdout
    for pid in out.split():  # the master's sshd session processes, children of our sshd
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    with open(os.path.join(local, "a.txt"), "w") as f:
        f.write("b\n")
    r = run_in(env, local, "put", *env.base, "--persist", "60", "a.txt", f"{env.target}:a.txt")
    assert r.returncode == 0, r.stderr
    assert open(env.remote("a.txt")).read() == "b\n"
    assert logins(env) == before + 1


def test_interrupted_client_stops_the_masters_transfer_and_resume_finishes_it(env, local):
    import time
    src = os.path.join(local, "big.bin")
    write_random(src, 256 * 1024 * 1024, seed=3)
    r = run_in(env, local, "run", *env.base, "--persist", "60", "-n", env.target, "true")  # master up
    assert r.returncode == 0, r.stderr
    part = env.remote(".big.bin.tn-part")
    p = subprocess.Popen([env.exe, "put", *env.base, "--persist", "60", "big.bin", f"{env.target}:big.bin"],
                         cwd=local, env=env.client.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (os.path.exists(part) and os.path.getsize(part) > 0) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    p.send_signal(signal.SIGINT)  # the client dies at once (no handler for put/get)
    p.communicate(timeout=30)
    if os.path.exists(env.remote("big.bin")):
        pytest.skip("the transfer finished before the client could be interrupted")
    # The master noticed and stopped: the part file stops growing, short of the whole file.
    sizes = []
    while len(sizes) < 4 or len(set(sizes[-4:])) > 1:  # unchanged over three looks in a row
        sizes.append(os.path.getsize(part))
        time.sleep(0.3)
    size = sizes[-1]
    assert size < os.path.getsize(src)
    assert len(masters(env)) == 1
    r = run_in(env, local, "put", *env.base, "--persist", "60", "--resume", "big.bin", f"{env.target}:big.bin")
    assert r.returncode == 0, r.stderr
    assert "resum" in r.stderr.lower(), r.stderr  # the master's note reaches the client's log
    assert sha(env.remote("big.bin")) == sha(src)
    assert not os.path.exists(part)
