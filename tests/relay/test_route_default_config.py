"""tn-route without -c: it reads $XDG_CONFIG_HOME/tn/tn-route.toml (~/.config/tn/ when XDG_CONFIG_HOME is
unset) or /etc/tn/tn-route.toml, and with none of them refuses with its usage and exit 64 instead of
listening on 0.0.0.0:7749 with no group. Real binary, loopback only."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from relay_env import ROUTE, TOKEN, wait_for  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402

SYSTEM = "/etc/tn/tn-route.toml"


@pytest.fixture
def home():
    d = tempfile.mkdtemp(prefix="tn-route-home-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def env_for(home, xdg=None):
    env = {k: v for k, v in os.environ.items() if k != "XDG_CONFIG_HOME"}
    env.update(HOME=home, TN_STATE_DIR=os.path.join(home, "state"))
    if xdg is not None:
        env["XDG_CONFIG_HOME"] = xdg
    return env


def write_config(path, port):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(f'[route]\nlisten = "127.0.0.1:{port}"\ntls = false\n\n[[group]]\nname = "g"\ntoken = "{TOKEN}"\n')
    os.chmod(path, 0o600)


def run(env, *args):
    return subprocess.run([ROUTE, *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=30)


@pytest.mark.skipif(os.path.exists(SYSTEM), reason=f"{SYSTEM} exists on this machine")
@pytest.mark.parametrize("args", [[], ["run"], ["--check-config"], ["status"], ["fingerprint"]])
def test_no_config_anywhere_is_a_usage_error(home, args):
    r = run(env_for(home), *args)
    assert r.returncode == 64, r.stderr
    assert r.stdout == ""
    assert os.path.join(home, ".config", "tn", "tn-route.toml") in r.stderr, r.stderr
    assert SYSTEM in r.stderr and "-c FILE" in r.stderr and "usage" in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(home, "state", "tn-route.crt"))  # nothing made on the way


@pytest.mark.skipif(os.path.exists(SYSTEM), reason=f"{SYSTEM} exists on this machine")
def test_xdg_config_home_is_searched_before_home(home):
    xdg = os.path.join(home, "xdg")
    env = env_for(home, xdg)
    r = run(env)
    assert r.returncode == 64 and os.path.join(xdg, "tn", "tn-route.toml") in r.stderr, r.stderr
    # A broken file there is that file's config error (78), located.
    bad = os.path.join(xdg, "tn", "tn-route.toml")
    os.makedirs(os.path.dirname(bad))
    with open(bad, "w") as f:
        f.write("[route]\nlisten = 7\n")
    r = run(env, "--check-config")
    assert r.returncode == 78 and r.stderr.startswith(bad + ":2:"), r.stderr


def test_the_found_config_runs_the_route(home):
    port = harness.free_port()
    write_config(os.path.join(home, ".config", "tn", "tn-route.toml"), port)
    env = env_for(home)
    assert run(env, "--check-config").returncode == 0
    p = subprocess.Popen([ROUTE], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, stdin=subprocess.DEVNULL)
    try:
        harness.wait_port(port, proc=p)  # the port of the found file, not 7749
        # `status` finds the same file, hence the same control socket.
        st = wait_for(lambda: json.loads(run(env, "status", "--json").stdout), what="status")
        assert st["vnets"] == []
    finally:
        harness.stop_process(p)
