"""Fixtures for tn-exec tests: a real sshd for a throwaway user and a client HOME whose key is authorized
and whose known_hosts pins the server (from tests/integration/harness.py)."""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402


class Env:
    def __init__(self, sshd, client):
        self.sshd = sshd
        self.client = client
        self.exe = harness.tool("tn-exec")
        self.target = f"{sshd.user.name}@127.0.0.1"
        self.base = ["-p", str(sshd.port)]

    def run(self, *args, input=None, timeout=120, text=True, env=None):
        e = self.client.env(**(env or {}))
        return subprocess.run([self.exe, *args], input=input, capture_output=True, text=text, timeout=timeout,
                              env=e, stdin=None if input is not None else subprocess.DEVNULL)

    def remote(self, *rel):
        """A path in the test user's home, as seen locally (same machine)."""
        return os.path.join(self.sshd.user.home, *rel)

    def chown_remote(self, path):
        for root, dirs, files in os.walk(path):
            for n in dirs + files:
                os.lchown(os.path.join(root, n), self.sshd.user.uid, self.sshd.user.gid)
        os.lchown(path, self.sshd.user.uid, self.sshd.user.gid)


@pytest.fixture
def env():
    if not harness.is_root():
        pytest.skip("needs root to create a throwaway sshd user")
    sshd = harness.Sshd().start()
    client = harness.ClientHome()
    try:
        client.trust(sshd)
        sshd.user.authorize(client.key())
        yield Env(sshd, client)
    finally:
        client.close()
        sshd.close()


def interrupt(env, extra, script, sig):
    """Starts `run --shell script` (which prints "ready" first), sends `sig` to tn-exec, returns
    (exit code, stdout, stderr)."""
    p = subprocess.Popen([env.exe, "run", *env.base, *extra, env.target, "--shell", script], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env.client.env())
    try:
        assert p.stdout.readline() == b"ready\n"
        p.send_signal(sig)
        out, err = p.communicate(timeout=30)
        return p.returncode, out, err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
