"""tn-exec put/get modes: only the permission bits (0777) ever cross, a get applies the local umask
unless --preserve is given (as sftp and scp do), and set-id bits never land on either side."""
import contextlib
import glob
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from exec_fixtures import env  # noqa: E402,F401

SETID = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX


@pytest.fixture
def local():
    d = tempfile.mkdtemp(prefix="tn-exec-modes-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def tn_exec(env, args, umask, persist):
    extra = ["--persist", "30"] if persist else []
    cmd = [env.exe, args[0], *env.base, *extra, *args[1:]]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                              env=env.client.env(), preexec_fn=lambda: os.umask(umask))
    finally:
        if persist:
            for pidfile in glob.glob(os.path.join(env.client.state_dir, "exec-*.sock.pid")):
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(open(pidfile).read()), signal.SIGTERM)


def mode(path):
    return os.stat(path).st_mode & 0o7777


def remote_file(env, name, m):
    p = env.remote(name)
    with open(p, "w") as f:
        f.write("x\n")
    os.chown(p, env.sshd.user.uid, env.sshd.user.gid)
    os.chmod(p, m)  # after chown, which clears set-id bits
    return p


@pytest.mark.parametrize("persist", [False, True])
def test_get_drops_setid_and_applies_umask(env, local, persist):
    remote_file(env, "suid", 0o6777)
    r = tn_exec(env, ["get", f"{env.target}:suid", os.path.join(local, "plain")], 0o027, persist)
    assert r.returncode == 0, r.stderr
    assert mode(os.path.join(local, "plain")) == 0o750
    r = tn_exec(env, ["get", "--preserve", f"{env.target}:suid", os.path.join(local, "kept")], 0o027, persist)
    assert r.returncode == 0, r.stderr
    assert mode(os.path.join(local, "kept")) == 0o777


def test_get_tree_drops_setgid_directories(env, local):
    d = env.remote("shared")
    os.mkdir(d)
    remote_file(env, "shared/f", 0o4755)
    os.chown(d, env.sshd.user.uid, env.sshd.user.gid)
    os.chmod(d, 0o3777)
    r = tn_exec(env, ["get", "-r", f"{env.target}:shared", os.path.join(local, "t")], 0o022, False)
    assert r.returncode == 0, r.stderr
    assert mode(os.path.join(local, "t")) == 0o755
    assert mode(os.path.join(local, "t", "f")) == 0o755


@pytest.mark.parametrize("persist", [False, True])
def test_put_never_creates_setid_files(env, local, persist):
    src = os.path.join(local, "tool")
    with open(src, "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(src, 0o6755)
    assert mode(src) & SETID
    r = tn_exec(env, ["put", src, f"{env.target}:tool"], 0o022, persist)
    assert r.returncode == 0, r.stderr
    assert mode(env.remote("tool")) == 0o755
