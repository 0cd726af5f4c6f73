"""tn-vnet's control socket and instance identity, with the real binaries: the socket is private to
its user whatever the umask (file mode, state dir checks, SO_PEERCRED against a throwaway local user),
`ctl` with nothing running is 69, the single-instance lock keys on route + group + name, and names a
hostile peer chose reach neither the terminal nor the log as control bytes."""
import contextlib
import os
import re
import stat
import subprocess
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from relay_env import Relay, VNET, wait_for, echo  # noqa: E402,F401,F811
import harness  # noqa: E402

# Runs as the other user, with /usr/bin/python3 (readable by everyone): connects to the socket and
# asks the vnet to register a serve; prints what happened.
ATTACK = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect-error", e.errno); sys.exit(0)
try:
    s.sendall(b"serve\x1frun\x1fintruder\x1f22\n")
except OSError:
    pass  # a refusal may come and close before our request is out; it is still there to read
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
print("reply", data.split(b"\n")[0].decode())
"""


@contextlib.contextmanager
def throwaway_user():
    name = "tnv" + uuid.uuid4().hex[:8]
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    try:
        out = subprocess.run(["id", "-u", name], capture_output=True, text=True, check=True).stdout
        yield int(out)
    finally:
        subprocess.run(["userdel", name], check=False)


def as_user(uid, *args, bypass_file_modes=False):
    """Runs `args` as uid; with bypass_file_modes the process keeps CAP_DAC_OVERRIDE, so only the
    vnet's own SO_PEERCRED check stands between it and the socket."""
    caps = ["--inh-caps=+dac_override", "--ambient-caps=+dac_override"] if bypass_file_modes else []
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *caps, *args],
                          capture_output=True, text=True, timeout=30)


@pytest.fixture
def relay():
    r = Relay()
    r.start_route()
    yield r
    print(r.all_logs())
    r.close()


def vnet_started_under_umask_000(relay):
    """Starts vnet 'home' with umask 000 (a careless service manager); returns its control socket."""
    old = os.umask(0)
    try:
        relay.start_vnet("home")
        relay.wait_connected("home")
    finally:
        os.umask(old)
    return relay.socket_of("home")


def test_socket_is_0600_even_when_started_under_umask_000(relay):
    mode = stat.S_IMODE(os.stat(vnet_started_under_umask_000(relay)).st_mode)
    assert mode == 0o600, oct(mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a throwaway user")
def test_another_local_user_cannot_use_the_control_socket(relay):
    sock = vnet_started_under_umask_000(relay)
    with throwaway_user() as uid:
        # Plain file permissions stop it first (the socket is 0600 in a 0700 dir) ...
        r = as_user(uid, "/usr/bin/python3", "-c", ATTACK, sock)
        assert r.stdout.startswith("connect-error 13"), r.stdout + r.stderr
        # ... and SO_PEERCRED even when the process can bypass file modes.
        r = as_user(uid, "/usr/bin/python3", "-c", ATTACK, sock, bypass_file_modes=True)
        assert r.stdout.strip() == "reply 77", r.stdout + r.stderr
    assert [s["name"] for s in relay.ctl_json("home", "show", "serve")] == []
    wait_for(lambda: f"refused a connection from uid {uid}" in relay.log("home"), what="refusal logged")


@pytest.mark.parametrize("mode", [0o777, 0o755, 0o770])
def test_a_state_dir_open_to_others_is_refused(relay, mode):
    os.chmod(relay.state, mode)
    try:
        p = relay.start_vnet("home")
        assert p.wait(timeout=30) == 78
    finally:
        os.chmod(relay.state, 0o700)
    log = relay.log("home")
    assert "is open to other users" in log and f"chmod 700 {relay.state}" in log, log
    assert not [f for f in os.listdir(relay.state) if f.startswith("tn-vnet-home")]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown the state dir")
def test_a_state_dir_of_another_user_is_refused(relay):
    with throwaway_user() as uid:
        os.chown(relay.state, uid, -1)
        try:
            p = relay.start_vnet("home")
            assert p.wait(timeout=30) == 78
        finally:
            os.chown(relay.state, 0, -1)
    assert f"owned by uid {uid}" in relay.log("home")


def test_ctl_with_no_vnet_running_is_69_with_a_clear_message(tmp_path):
    env = dict(os.environ, TN_STATE_DIR=str(tmp_path / "state"))
    os.mkdir(tmp_path / "state", 0o700)
    r = subprocess.run([VNET, "ctl", "show", "vnet"], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 69, r.stderr
    assert "no tn-vnet is running" in r.stderr
    # The same with the config named but nothing listening on its socket.
    cfg = tmp_path / "v.toml"
    cfg.write_text('[route]\naddress = "127.0.0.1:9"\ntoken = "t"\ntls = false\n[vnet]\nname = "a"\n')
    cfg.chmod(0o600)
    r = subprocess.run([VNET, "ctl", "-c", str(cfg), "show", "vnet"], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 69, r.stderr
    assert "not running" in r.stderr


def test_same_name_for_two_routes_runs_twice_but_not_twice_for_one(relay):
    other = Relay()  # a second route, with its own state; both vnets run as one user in relay.state
    try:
        other.start_route()
        relay.start_vnet("a")
        relay.wait_connected("a")
        p = relay.spawn("a-other", [VNET, "-c", other.vnet_config("a")])
        wait_for(lambda: len([f for f in os.listdir(relay.state) if re.fullmatch(r"tn-vnet-a-[0-9a-f]{12}\.sock", f)]) == 2,
                 what="two control sockets for two vnets named a")
        for route in (relay, other):
            wait_for(lambda: [v["name"] for v in route.status()["vnets"]] == ["a"], what="each route has its vnet a")
        assert p.poll() is None, relay.log("a-other")
        # The same route, group and name again is the same instance: refused, nothing broken.
        dup = relay.spawn("a-again", [VNET, "-c", os.path.join(relay.dir, "a.toml")])
        assert dup.wait(timeout=30) == 75
        assert "already runs here" in relay.log("a-again")
        assert p.poll() is None
    finally:
        print(other.all_logs())
        other.close()


def test_hostile_serve_names_reach_neither_terminal_nor_log_as_control_bytes(relay, echo):
    evil = "x\x1b]0;o\x07\x1b[2J\n2026-01-01T00:00:00.000Z INFO  f\tc\u009b"  # names are at most 64 bytes
    use_port = harness.free_port()
    relay.start_vnet("home", serves=[{"name": evil, "id": 700, "port": echo.port}])  # TOML escapes carry it
    relay.start_vnet("office", uses=[{"name": "u", "id": 700, "port": use_port}])
    relay.wait_use("office", "u")
    r = relay.ctl("office", "show", "serves")
    for bad in ("\x1b", "\x07", "\u009b"):
        assert bad not in r.stdout
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("700\t")]
    assert len(rows) == 1 and rows[0].count("\t") == 6, r.stdout  # one row, its columns intact
    assert "x\\x1b]0;o\\x07\\x1b[2J\\n2026" in rows[0]
    as_json = relay.ctl_json("office", "show", "serves")
    assert as_json[0]["name"] == evil  # JSON keeps the exact name, validly escaped
    for name in ("office", "home", "route"):
        log = relay.log(name)
        assert "\x1b" not in log and "\u009b" not in log, log
        assert not any(ln.startswith("2026-01-01T00:00:00.000Z") for ln in log.splitlines()), log
    assert "x\\x1b]0;o\\x07" in relay.log("office")  # the attach line names the serve, escaped


def test_warns_once_when_the_config_with_the_token_is_readable_by_others(relay):
    path = relay.vnet_config("home")
    os.chmod(path, 0o644)
    relay.start_vnet("home", config=path)
    relay.wait_connected("home")
    lines = [ln for ln in relay.log("home").splitlines() if "readable by others" in ln]
    assert len(lines) == 1 and "WARN" in lines[0] and f"chmod 600 {path}" in lines[0], relay.log("home")
    os.chmod(path, 0o600)
    relay.stop("home")
    relay.spawn("home-again", [VNET, "-c", path])  # restarted with a private file: no warning
    relay.wait_connected("home")
    assert "readable by" not in relay.log("home-again")
