"""tn-exec put - / get -: stdin to a remote file (temp name, renamed when whole) and a remote file to
stdout, against the real sshd; remote errors exit 255 with the message and leave nothing behind."""
import hashlib
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from exec_fixtures import env  # noqa: E402,F401

MIB = 1024 * 1024


def leftovers(env, rel_dir=""):
    return [n for n in os.listdir(env.remote(rel_dir)) if n.endswith(".tn-part")]


def test_put_and_get_64_mib_through_pipes(env):
    data = os.urandom(64 * MIB)
    r = env.run("put", *env.base, "-", f"{env.target}:big.bin", input=data, text=False)
    assert r.returncode == 0, r.stderr
    with open(env.remote("big.bin"), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert oct(os.stat(env.remote("big.bin")).st_mode & 0o777) == oct(0o666 & ~0o022)
    assert leftovers(env) == []
    r = env.run("get", *env.base, f"{env.target}:big.bin", "-", text=False)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(r.stdout).hexdigest() == hashlib.sha256(data).hexdigest()


def test_put_replaces_an_existing_file_keeping_its_mode(env):
    path = env.remote("conf")
    with open(path, "w") as f:
        f.write("old\n")
    os.chmod(path, 0o640)
    env.chown_remote(path)
    r = env.run("put", *env.base, "-", f"{env.target}:conf", input=b"new\n", text=False)
    assert r.returncode == 0, r.stderr
    assert open(path).read() == "new\n" and os.stat(path).st_mode & 0o777 == 0o640


def test_put_errors_are_255_and_leave_nothing(env):
    r = env.run("put", *env.base, "-", f"{env.target}:no/such/dir/f", input=b"x", text=False)
    assert r.returncode == 255 and b"no/such/dir" in r.stderr, r.stderr
    os.mkdir(env.remote("ro"), 0o555)
    env.chown_remote(env.remote("ro"))
    r = env.run("put", *env.base, "-", f"{env.target}:ro/f", input=b"x", text=False)
    assert r.returncode == 255 and b"ro/" in r.stderr and os.listdir(env.remote("ro")) == []
    # The target's stat and the temp file's open go out together: the temp file made beside a
    # directory target is removed again.
    r = env.run("put", *env.base, "-", f"{env.target}:ro", input=b"x", text=False)
    assert r.returncode == 255 and b"must name a file" in r.stderr
    assert leftovers(env) == []


def test_put_whose_input_fails_midway_removes_the_temp_file(env):
    path = env.remote("keep")
    with open(path, "w") as f:
        f.write("old\n")
    env.chown_remote(path)
    # A directory as stdin: the temp file is created, then reading fails (EISDIR).
    d = os.open(env.client.dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        r = subprocess.run([env.exe, "put", *env.base, "-", f"{env.target}:keep"], stdin=d, capture_output=True,
                           text=True, timeout=120, env=env.client.env())
    finally:
        os.close(d)
    assert r.returncode == 255 and "standard input" in r.stderr, r.stderr
    assert open(path).read() == "old\n"
    assert leftovers(env) == []


def test_get_errors(env):
    r = env.run("get", *env.base, f"{env.target}:missing", "-", text=False)
    assert r.returncode == 255 and b"does not exist" in r.stderr and r.stdout == b""
    r = env.run("get", *env.base, f"{env.target}:.", "-", text=False)
    assert r.returncode == 255 and b"directory" in r.stderr and r.stdout == b""


def test_get_into_a_closed_pipe_fails_cleanly(env):
    with open(env.remote("big"), "wb") as f:
        f.write(os.urandom(8 * MIB))
    env.chown_remote(env.remote("big"))
    p = subprocess.Popen([env.exe, "get", *env.base, f"{env.target}:big", "-"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env.client.env())
    p.stdout.read(10)
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=120) == 255 and b"standard output" in err, err


def test_stream_usage_errors(env):
    for args in (["get", "--persist", "5", "-H", env.target, "f", "-"], ["put", "--persist", "5", "-H", env.target, "-", "f"],
                 ["get", "-r", f"{env.target}:d", "-"], ["put", "--resume", "-", f"{env.target}:f"]):
        r = env.run(*args, *env.base, input="", text=True)
        assert r.returncode == 64, (args, r.stderr)


def test_streams_through_a_persist_master(env):
    """put - and get - with --persist: the master reads our stdin / writes our stdout itself (the
    descriptor rides along with the request), same temp-name-and-rename for put."""
    data = os.urandom(3 << 20)
    for _ in range(2):  # the first starts the master, the second reuses it
        r = env.run("put", *env.base, "--persist", "5", "-", f"{env.target}:via-master.bin", input=data, text=False)
        assert r.returncode == 0, r.stderr
        with open(env.remote("via-master.bin"), "rb") as f:
            assert f.read() == data
        r = env.run("get", *env.base, "--persist", "5", f"{env.target}:via-master.bin", "-", text=False)
        assert r.returncode == 0 and r.stdout == data, r.stderr
    r = env.run("get", *env.base, "--persist", "5", f"{env.target}:missing", "-", text=False)
    assert r.returncode == 255 and r.stdout == b"" and b"missing" in r.stderr
