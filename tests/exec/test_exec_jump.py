"""tn-exec -J: the destination sshd listens on loopback inside a network namespace, reachable only
through a jump sshd in the same namespace (whose address the host reaches over a veth pair). Host keys
are checked on both hops; run, put/get, the file operations, --persist and serve go through it; a
failure names the hop that failed."""
import contextlib
import glob
import json
import os
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402
from exec_fixtures import Env  # noqa: E402


@pytest.fixture
def hops():
    if not harness.is_root():
        pytest.skip("needs root for users and a network namespace")
    with harness.netns_sshd(prefix="tnjump") as (ns, _dev, jump):
        dest = harness.Sshd(netns=ns.name, listen="127.0.0.1").start()
        client = harness.ClientHome()
        try:
            pub = client.key()
            jump.user.authorize(pub)
            dest.user.authorize(pub)
            client.trust(jump)
            client.trust(dest)
            env = Env(dest, client)
            env.jump = f"{jump.user.name}@{jump.listen}:{jump.port}"
            env.jump_sshd = jump
            env.base = ["-p", str(dest.port), "-J", env.jump]
            yield env
        finally:
            for pidfile in glob.glob(os.path.join(client.state_dir, "exec-*.sock.pid")):
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(open(pidfile).read()), signal.SIGTERM)
            client.close()
            dest.close()


def test_run_through_the_jump_host_only(hops):
    r = hops.run("run", *hops.base, hops.target, "--", "sh", "-c", "id -un; cat", input="through\n")
    assert (r.returncode, r.stdout) == (0, f"{hops.sshd.user.name}\nthrough\n"), r.stderr
    assert "Accepted publickey" in hops.jump_sshd.log() and "Accepted publickey" in hops.sshd.log()
    # Without -J the destination cannot be reached at all: it listens on the namespace's loopback.
    r = hops.run("run", "-p", str(hops.sshd.port), "--connect-timeout", "5", hops.target, "true")
    assert r.returncode == 255


def test_files_persist_and_serve_through_the_jump_host(hops):
    data = os.urandom(3 << 20)
    src = os.path.join(hops.client.dir, "src.bin")
    with open(src, "wb") as f:
        f.write(data)
    r = hops.run("put", *hops.base, src, f"{hops.target}:up.bin")
    assert r.returncode == 0, r.stderr
    back = os.path.join(hops.client.dir, "back.bin")
    r = hops.run("get", *hops.base, f"{hops.target}:up.bin", back)
    assert r.returncode == 0, r.stderr
    with open(back, "rb") as f:
        assert f.read() == data
    r = hops.run("stat", *hops.base, f"{hops.target}:up.bin")
    assert r.returncode == 0 and str(len(data)) in r.stdout, r.stderr
    for word in ("one", "two"):
        r = hops.run("run", *hops.base, "--persist", "30", hops.target, "--", "echo", word)
        assert (r.returncode, r.stdout) == (0, word + "\n"), r.stderr
    r = subprocess.run([hops.exe, "serve", "--stdio", *hops.base], capture_output=True, text=True, timeout=120,
                       env=hops.client.env(), input='{"id":"1","op":"run","host":"%s","command":"echo served"}\n' % hops.target)
    assert '"exit":0' in r.stdout and "c2VydmVkCg==" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("hop", ["jump", "destination"])
def test_unknown_host_key_is_refused_and_its_hop_named(hops, hop):
    server = hops.jump_sshd if hop == "jump" else hops.sshd
    with open(hops.client.known_hosts) as f:
        lines = f.readlines()
    with open(hops.client.known_hosts, "w") as f:
        f.writelines(line for line in lines if f":{server.port} " not in line)
    r = hops.run("run", *hops.base, hops.target, "true")
    assert r.returncode == 255, r.stderr  # a host key refused is one of tn-exec's own failures, as in ssh
    if hop == "jump":
        assert f"jump host {hops.jump}: host key of {server.listen}:{server.port} is not known" in r.stderr
    else:  # refused end to end: the jump host is not blamed for the destination's key
        assert "jump host" not in r.stderr and f"127.0.0.1:{server.port} is not known" in r.stderr


def test_destination_the_jump_host_cannot_reach_is_named(hops):
    r = hops.run("run", "-p", str(harness.free_port()), "-J", hops.jump, hops.target, "true")
    assert r.returncode == 255, r.stderr
    assert f"jump host {hops.jump_sshd.user.name}@{hops.jump_sshd.listen}:{hops.jump_sshd.port} cannot reach 127.0.0.1:" in r.stderr


def test_proxyjump_from_ssh_config(hops):
    """ProxyJump in ~/.ssh/config makes the same hop of ours (no ssh binary: PATH holds none here)."""
    with open(os.path.join(hops.client.ssh_dir, "config"), "w") as f:
        f.write(f"Host dest\n  HostName 127.0.0.1\n  Port {hops.sshd.port}\n  User {hops.sshd.user.name}\n"
                f"  ProxyJump {hops.jump}\n")
    r = hops.run("run", "dest", "--", "echo", "via config", env={"PATH": "/nonexistent"})
    assert (r.returncode, r.stdout) == (0, "via config\n"), r.stderr
    with open(os.path.join(hops.client.ssh_dir, "config"), "a") as f:
        f.write("Host chain\n  HostName 127.0.0.1\n  ProxyJump a@j1,b@j2\n")
    r = hops.run("run", "chain", "true")
    assert r.returncode == 78 and "several hops" in r.stderr, r.stderr


def test_serve_closing_hops_leaves_no_socket_behind(hops):
    """Each open/close through the jump host frees the hop's socket pair (libssh 0.10 leaves a socket
    given to it open: the hop closes it), so a long-running serve does not run out of descriptors."""
    p = subprocess.Popen([hops.exe, "serve", "--stdio", *hops.base], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         env=hops.client.env(), text=True)
    try:
        counts = []
        for i in range(4):
            for op in ("run", "close"):
                p.stdin.write(json.dumps({"id": str(i), "op": op, "host": hops.target, "command": "true"}) + "\n")
                p.stdin.flush()
                assert json.loads(p.stdout.readline())["exit"] == 0
            counts.append(len(os.listdir(f"/proc/{p.pid}/fd")))
        assert counts[-1] == counts[0], counts
    finally:
        p.stdin.close()
        p.wait(timeout=30)
