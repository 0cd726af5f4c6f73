"""tn-exec put/get against a real sshd: big files, trees with modes and mtimes, resume, errors, and the
upload-run-fetch workflow of the examples."""
import contextlib
import glob
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from exec_fixtures import env  # noqa: E402,F401

ROOT = os.environ.get("TN_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_random(path, size, seed=1):
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(rnd.randbytes(n))
            left -= n


def tree_state(root):
    """{relpath: (sha, mode, mtime)} for every file and directory below root."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            st = os.stat(p)
            rel = os.path.relpath(p, root)
            out[rel] = (sha(p) if n in files else "dir", st.st_mode & 0o7777, int(st.st_mtime))
    return out


@pytest.fixture
def local():
    d = tempfile.mkdtemp(prefix="tn-exec-local-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_put_get_64mib(env, local):
    src = os.path.join(local, "big.bin")
    write_random(src, 64 * 1024 * 1024)
    os.chmod(src, 0o640)
    os.utime(src, (1_600_000_000, 1_600_000_000))
    r = env.run("put", *env.base, src, f"{env.target}:big.bin")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""  # no progress bar without a TTY
    dst = env.remote("big.bin")
    assert sha(dst) == sha(src)
    st = os.stat(dst)
    assert st.st_mode & 0o7777 == 0o640 and int(st.st_mtime) == 1_600_000_000
    assert not os.path.exists(env.remote(".big.bin.tn-part"))

    back = os.path.join(local, "back.bin")
    r = env.run("get", *env.base, f"{env.target}:big.bin", back)
    assert r.returncode == 0, r.stderr
    assert sha(back) == sha(src)
    st = os.stat(back)
    assert st.st_mode & 0o7777 == 0o640 and int(st.st_mtime) == 1_600_000_000


def test_tree_of_500_files(env, local):
    src = os.path.join(local, "tree")
    rnd = random.Random(7)
    modes = [0o644, 0o600, 0o755, 0o640, 0o400]
    for i in range(500):
        d = os.path.join(src, f"d{i % 10}", f"sub {i % 3}")
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, f"f{i}-ü.txt")
        with open(p, "wb") as f:
            f.write(rnd.randbytes(rnd.randint(0, 5000)))
        os.chmod(p, modes[i % len(modes)])
        os.utime(p, (1_500_000_000 + i, 1_500_000_000 + i))
    for dirpath, dirs, _ in os.walk(src, topdown=False):
        for n in dirs:
            os.utime(os.path.join(dirpath, n), (1_400_000_000, 1_400_000_000))
    r = env.run("put", *env.base, "-r", src, f"{env.target}:")
    assert r.returncode == 0, r.stderr
    assert tree_state(env.remote("tree")) == tree_state(src)

    out = os.path.join(local, "out")
    os.makedirs(out)
    r = env.run("get", *env.base, "-r", f"{env.target}:tree", out)
    assert r.returncode == 0, r.stderr
    assert tree_state(os.path.join(out, "tree")) == tree_state(src)


def test_directory_without_r_is_refused(env, local):
    r = env.run("put", *env.base, local, f"{env.target}:x")
    assert r.returncode == 255 and "use -r" in r.stderr


def test_put_resume(env, local):
    src = os.path.join(local, "data.bin")
    write_random(src, 8 * 1024 * 1024 + 123, seed=3)
    part = env.remote(".data.bin.tn-part")
    with open(src, "rb") as f, open(part, "wb") as p:
        p.write(f.read(3 * 1024 * 1024))  # what an interrupted run leaves behind
    env.chown_remote(part)
    r = env.run("put", *env.base, "--resume", src, f"{env.target}:data.bin")
    assert r.returncode == 0, r.stderr
    assert f"at byte {3 * 1024 * 1024}" in r.stderr
    assert sha(env.remote("data.bin")) == sha(src)
    assert not os.path.exists(part)

    # A partial file that does not match the source is started over, never spliced.
    with open(part, "wb") as p:
        p.write(b"x" * 1000)
    env.chown_remote(part)
    r = env.run("put", *env.base, "--resume", src, f"{env.target}:data.bin")
    assert r.returncode == 0, r.stderr
    assert "starting over" in r.stderr
    assert sha(env.remote("data.bin")) == sha(src)


def test_put_resume_after_interrupt(env, local):
    src = os.path.join(local, "big.bin")
    write_random(src, 96 * 1024 * 1024, seed=5)
    part = env.remote(".big.bin.tn-part")
    p = subprocess.Popen([env.exe, "put", *env.base, src, f"{env.target}:big.bin"], env=env.client.env(),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Kill it once some data has landed (or let it finish on a very fast machine).
        while p.poll() is None and (not os.path.exists(part) or os.path.getsize(part) < 1024 * 1024):
            pass
        p.kill()
    finally:
        p.wait()
    r = env.run("put", *env.base, "--resume", src, f"{env.target}:big.bin")
    assert r.returncode == 0, r.stderr
    assert sha(env.remote("big.bin")) == sha(src)


def test_get_resume(env, local):
    remote = env.remote("r.bin")
    write_random(remote, 5 * 1024 * 1024, seed=9)
    env.chown_remote(remote)
    with open(remote, "rb") as f, open(os.path.join(local, ".r.bin.tn-part"), "wb") as p:
        p.write(f.read(2 * 1024 * 1024 + 7))
    r = env.run("get", *env.base, "--resume", f"{env.target}:r.bin", local + "/")
    assert r.returncode == 0, r.stderr
    assert "at byte" in r.stderr
    assert sha(os.path.join(local, "r.bin")) == sha(remote)


def test_spaces_and_unicode_in_remote_paths(env, local):
    src = os.path.join(local, "données été.txt")
    with open(src, "w") as f:
        f.write("bonjour\n")
    os.makedirs(env.remote("dir with space"))
    env.chown_remote(env.remote("dir with space"))
    r = env.run("put", *env.base, src, f"{env.target}:dir with space/")
    assert r.returncode == 0, r.stderr
    assert open(env.remote("dir with space", "données été.txt")).read() == "bonjour\n"
    r = env.run("get", *env.base, f"{env.target}:dir with space/données été.txt", os.path.join(local, "back"))
    assert r.returncode == 0, r.stderr
    assert open(os.path.join(local, "back")).read() == "bonjour\n"


def test_missing_remote_path_names_host_and_path(env, local):
    r = env.run("get", *env.base, f"{env.target}:no/such/file", local)
    assert r.returncode == 255
    assert "no/such/file" in r.stderr and "127.0.0.1" in r.stderr
    r = env.run("put", *env.base, "/nonexistent-local", f"{env.target}:x")
    assert r.returncode == 255 and "/nonexistent-local" in r.stderr


@pytest.mark.parametrize("persist", ["", "30"])
def test_seed001_example_workflow(env, local, persist):
    script = os.path.join(ROOT, "examples/tn-exec/upload-run-fetch.sh")
    inp = os.path.join(local, "report.txt")
    with open(inp, "w") as f:
        f.write("p1\tIntro\tthe quick brown fox\np2\tBody\tthe lazy brown dog\np3\tEnd\tnothing shared here\n")
    logins = env.sshd.log().count("Accepted publickey")
    extra = {"TN_EXEC_PERSIST": persist} if persist else {}
    try:
        r = subprocess.run(["sh", script, env.target, inp, os.path.join(local, "result.txt")], capture_output=True,
                           text=True, timeout=120, cwd=local,
                           env=env.client.env(TN_EXEC=env.exe, TN_EXEC_OPTS=f"-p {env.sshd.port}", **extra))
    finally:
        for pidfile in glob.glob(os.path.join(env.client.state_dir, "exec-*.sock.pid")):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(open(pidfile).read()), signal.SIGTERM)
    assert r.returncode == 0, r.stdout + r.stderr
    # Four steps: four logins, or one shared by all of them through the --persist master.
    assert env.sshd.log().count("Accepted publickey") - logins == (1 if persist else 4)
    assert "assessed 3 paragraphs" in r.stdout
    lines = open(os.path.join(local, "result.txt")).read().splitlines()
    assert lines[0] == "p1\tIntro\t4\tp2\t2"
    assert len(lines) == 3


def test_progress_bar_only_on_a_tty(env, local):
    import pty
    src = os.path.join(local, "p.bin")
    write_random(src, 4 * 1024 * 1024)
    master, slave = pty.openpty()
    try:
        p = subprocess.run([env.exe, "put", *env.base, src, f"{env.target}:p.bin"], env=env.client.env(),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, timeout=120)
        os.close(slave)
        slave = -1
        drawn = b""
        try:
            while True:
                chunk = os.read(master, 4096)
                if not chunk:
                    break
                drawn += chunk
        except OSError:  # EIO once the pty is drained and closed
            pass
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert p.returncode == 0
    assert b"p.bin" in drawn and b"100%" in drawn and b"ETA" in drawn and b"MiB/s" in drawn
    assert p.stdout == b""


def test_local_disk_full(env, local):
    remote = env.remote("two-mib.bin")
    write_random(remote, 2 * 1024 * 1024)
    env.chown_remote(remote)
    small = os.path.join(local, "small-fs")
    os.makedirs(small)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tn-exec-test", small], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        r = env.run("get", *env.base, f"{env.target}:two-mib.bin", small + "/")
        assert r.returncode == 255
        assert "local disk full" in r.stderr and small in r.stderr
    finally:
        subprocess.run(["umount", small], capture_output=True)
