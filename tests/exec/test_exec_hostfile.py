"""tn-exec -H @FILE where each line names its host's own password file: two password-only sshds with
different users and passwords, run and put/get and --persist through them; a wrong password is 77
for its host only; a readable file is refused before any connection; a bad line names file:line."""
import contextlib
import glob
import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402
from exec_fixtures import Env  # noqa: E402


@pytest.fixture
def two():
    if not harness.is_root():
        pytest.skip("needs root to create throwaway users")
    servers = [harness.Sshd(password_auth=True).start() for _ in range(2)]
    client = harness.ClientHome()  # no key: only the passwords log in
    try:
        for s in servers:
            client.trust(s)
        yield Env(servers[0], client), servers
    finally:
        for pidfile in glob.glob(os.path.join(client.state_dir, "exec-*.sock.pid")):  # our --persist masters
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(open(pidfile).read()), signal.SIGTERM)
        client.close()
        for s in servers:
            s.close()


def write(env, name, text, mode=0o600):
    path = os.path.join(env.client.dir, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def hosts_file(env, servers, passwords):
    """pw0 relative (to the list's directory), pw1 absolute."""
    write(env, "pw0", passwords[0] + "\n")
    pw1 = write(env, "pw1", passwords[1] + "\n")
    return write(env, "hosts", f"# fleet\n{servers[0].user.name}@127.0.0.1:{servers[0].port} --password-file pw0\n"
                               f"{servers[1].user.name}@127.0.0.1:{servers[1].port}  --password-file {pw1}\n")


def test_each_host_logs_in_with_its_own_password(two):
    env, servers = two
    hosts = hosts_file(env, servers, [s.user.password for s in servers])
    r = env.run("run", "-H", "@" + hosts, "--", "id", "-un")
    assert r.returncode == 0, r.stderr
    for s in servers:
        assert f"{s.user.name}@127.0.0.1:{s.port}: {s.user.name}\n" in r.stdout
    r = env.run("put", "-H", "@" + hosts, write(env, "data", "payload\n"), "copied.txt")
    assert r.returncode == 0, r.stderr
    for s in servers:
        with open(os.path.join(s.user.home, "copied.txt")) as f:
            assert f.read() == "payload\n"
    r = env.run("run", "-H", "@" + hosts, "--persist", "30", "--", "echo", "via master")
    assert r.returncode == 0 and r.stdout.count("via master") == 2, r.stderr
    r = env.run("run", "-H", "@" + hosts, "--persist", "30", "--", "echo", "again")  # reuses both masters
    assert r.returncode == 0 and r.stdout.count("again") == 2, r.stderr


def test_wrong_password_is_77_for_that_host_only(two):
    env, servers = two
    hosts = hosts_file(env, servers, [servers[0].user.password, "wrong-password"])
    r = env.run("run", "-H", "@" + hosts, "--", "echo", "ok")
    assert r.returncode == 77, r.stderr
    assert f"{servers[0].user.name}@127.0.0.1:{servers[0].port}: ok\n" in r.stdout
    assert "password refused" in r.stderr and servers[1].user.name in r.stderr
    assert "wrong-password" not in r.stdout + r.stderr


def test_readable_password_file_refused_before_connecting(two):
    env, servers = two
    hosts = hosts_file(env, servers, [s.user.password for s in servers])
    os.chmod(os.path.join(env.client.dir, "pw0"), 0o644)
    r = env.run("run", "-H", "@" + hosts, "--", "echo", "ok")
    assert r.returncode == 77 and "chmod 600" in r.stderr and r.stdout == ""
    assert "Accepted" not in servers[1].log()


def test_bad_lines_name_the_file_and_line(two):
    env, servers = two
    for line, what in [("h1 --password pw", "want '[user@]host"), ("h1:99999", "port"), ("h1 --password-file", "want")]:
        hosts = write(env, "bad", "ok-host\n" + line + "\n")
        r = env.run("run", "-H", "@" + hosts, "--", "true")
        assert r.returncode == 64, r.stderr
        assert f"{hosts}:2: " in r.stderr and what in r.stderr, r.stderr


def test_put_stdin_to_many_hosts(two):
    """put - -H: stdin read whole once, then the same bytes to every host (temp name, rename)."""
    env, servers = two
    hosts = hosts_file(env, servers, [s.user.password for s in servers])
    data = os.urandom(5 << 20)
    r = env.run("put", "-H", "@" + hosts, "-", "streamed.bin", input=data, text=False)
    assert r.returncode == 0, r.stderr
    for s in servers:
        with open(os.path.join(s.user.home, "streamed.bin"), "rb") as f:
            assert f.read() == data
    # get - with -H frames each host's file as that host's output lines (test_exec_fanout checks the framing).
    r = env.run("get", "-H", "@" + hosts, "streamed.bin", "-", text=False)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) > 2 * len(data)
    r = env.run("put", "-H", "@-", "-", "x", input="h1\n")
    assert r.returncode == 64 and "both want stdin" in r.stderr
