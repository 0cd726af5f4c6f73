"""tn-exec persist list|stop: the --persist masters shown (text and JSON) and stopped, as
`ssh -O check|exit` does for ControlMasters; a process that is not our master is never signalled."""
import json
import os
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from exec_fixtures import env as base_env  # noqa: E402
import harness  # noqa: E402  (on the path through exec_fixtures)
from test_exec_persist import alive, masters  # noqa: E402


@pytest.fixture
def env(base_env):  # noqa: F811
    yield base_env
    for pid in masters(base_env):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def wait_gone(pid):
    return harness.wait_for(lambda: not alive(pid), timeout=30, what=f"master {pid} to exit")


def test_list_and_stop(env):
    r = env.run("persist", "list", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"masters": []}
    assert env.run("persist", "list", "--", env.target).returncode == 1  # like ssh -O check: none

    r = env.run("run", *env.base, "--persist", "60", env.target, "true")
    assert r.returncode == 0, r.stderr
    [pid] = masters(env)
    target = f"{env.target}:{env.sshd.port}"

    r = env.run("persist", "list")
    assert r.returncode == 0, r.stderr
    fields = r.stdout.split()
    assert fields[:2] == [str(pid), target] and fields[2].endswith(".sock")
    doc = json.loads(env.run("--json", "persist", "list").stdout)
    assert [(m["pid"], m["target"], m["label"]) for m in doc["masters"]] == [(pid, target, env.target)]
    assert env.run("persist", "list", target).returncode == 0

    # The listed target is accepted back: by `stop` and by `run`.
    r = env.run("run", "--persist", "60", target, "--", "echo", "again")
    assert (r.returncode, r.stdout) == (0, "again\n"), r.stderr
    assert masters(env) == [pid]
    r = env.run("persist", "stop", target)
    assert r.returncode == 0, r.stderr
    assert wait_gone(pid)
    assert json.loads(env.run("persist", "list", "--json").stdout) == {"masters": []}
    assert env.run("persist", "stop", target).returncode == 1


def test_stop_all_and_by_pid(env):
    r = env.run("run", *env.base, "--persist", "60", env.target, "true")
    assert r.returncode == 0, r.stderr
    # Other connection settings (an explicit identity file): a master of its own.
    key = os.path.join(env.client.ssh_dir, "id_ed25519")
    r = env.run("run", "--persist", "60", "-i", key, "-l", env.sshd.user.name,
                "-p", str(env.sshd.port), "127.0.0.1", "true")
    assert r.returncode == 0, r.stderr
    pids = masters(env)
    assert len(pids) == 2
    r = env.run("persist", "stop", str(pids[0]))
    assert r.returncode == 0, r.stderr
    assert wait_gone(pids[0]) and alive(pids[1])
    r = env.run("persist", "stop", "--all")
    assert r.returncode == 0, r.stderr
    assert wait_gone(pids[1])


def test_a_stranger_named_in_a_pid_file_is_left_alone(env):
    os.makedirs(env.client.state_dir, mode=0o700, exist_ok=True)
    stranger = subprocess.Popen(["sleep", "600"])
    try:
        with open(os.path.join(env.client.state_dir, "exec-0000000000000000.sock.pid"), "w") as f:
            f.write(str(stranger.pid))
        r = env.run("persist", "list", "--json")
        assert json.loads(r.stdout) == {"masters": []}
        r = env.run("persist", "stop", "--all")
        assert r.returncode == 0
        r = env.run("persist", "stop", str(stranger.pid))
        assert r.returncode == 1
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_usage(env):
    assert env.run("persist").returncode == 64
    r = env.run("persist", "stop")
    assert r.returncode == 64 and "--all" in r.stderr
