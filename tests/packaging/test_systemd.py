"""tn under systemd, without a running systemd: the READY=1 a Type=notify unit waits for arrives on a
notification socket the test binds, only once the daemon listens; journal-mode log lines carry a
syslog priority and no timestamp; every unit file passes `systemd-analyze verify`."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402

ROOT = harness.SOURCE_ROOT
BUILD = os.environ.get("TN_BUILD_ROOT", "")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
SYSTEM_UNITS = ["tn-route.service", "tn-vnet@.service", "tn-tun-server@.service", "tn-tun-client@.service",
                "tn-forward@.service"]
USER_UNITS = ["tn-forward@.service", "tn-watch@.service"]


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="tn-sd-")
    os.chmod(d, 0o700)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def route_config(tmp):
    port = harness.free_port()
    path = os.path.join(tmp, "route.toml")
    with open(path, "w") as f:
        f.write(f'[route]\nlisten = "127.0.0.1:{port}"\n\n[[group]]\nname = "g"\ntoken = "token-0123456789abcdef"\n')
    os.chmod(path, 0o600)
    return path, port


def start_route(tmp, env_extra, stderr):
    cfg, port = route_config(tmp)
    env = {**os.environ, "TN_STATE_DIR": os.path.join(tmp, "state"), **env_extra}
    proc = subprocess.Popen([harness.tool("tn-route"), "-c", cfg], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=stderr, env=env)
    return proc, port


def listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_ready_arrives_once_the_route_listens(tmp):
    path = os.path.join(tmp, "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(60)  # a bound on a broken build, not a timing assertion
        proc, port = start_route(tmp, {"NOTIFY_SOCKET": path}, subprocess.DEVNULL)
        try:
            msg = sock.recv(4096).decode()
            # The message came at the moment it was sent: the listener must already be bound.
            assert listening(port), "READY=1 came before the route listened"
            assert "READY=1" in msg.splitlines(), msg
        finally:
            harness.stop_process(proc)
    assert proc.returncode == 0


def test_the_route_loop_feeds_the_watchdog(tmp):
    """WatchdogSec= arms it: WATCHDOG=1 comes from the event loop, again and again (every half period)."""
    path = os.path.join(tmp, "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(60)
        proc, _ = start_route(tmp, {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}, subprocess.DEVNULL)
        try:
            seen = []
            while seen.count("WATCHDOG=1") < 3:
                seen += sock.recv(4096).decode().splitlines()
            assert "READY=1" in seen
        finally:
            harness.stop_process(proc)
    assert proc.returncode == 0


def read_journal_lines(tmp, journal_stream_matches):
    r, w = os.pipe()
    st = os.fstat(w)
    stream = f"{st.st_dev}:{st.st_ino}" if journal_stream_matches else f"{st.st_dev}:{st.st_ino + 1}"
    path = os.path.join(tmp, "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(60)
        proc, _ = start_route(tmp, {"JOURNAL_STREAM": stream, "NOTIFY_SOCKET": path}, w)
        os.close(w)
        try:
            sock.recv(4096)  # ready: the start-up lines are written
        finally:
            harness.stop_process(proc)
    with os.fdopen(r) as f:
        return f.read().splitlines()


def test_journal_lines_carry_priorities_and_no_timestamp(tmp):
    lines = read_journal_lines(tmp, True)
    assert lines, "the route logged nothing"
    for line in lines:
        assert re.match(r"^<[3467]>(ERROR|WARN |INFO |DEBUG|TRACE) tn-route: ", line), line
        assert not TIMESTAMP.search(line), line
    assert any(line.startswith("<6>INFO  tn-route: ") for line in lines), lines
    assert any(line.startswith("<6>INFO  tn-route: stopping on signal") for line in lines), lines


def test_a_stream_that_is_not_the_journal_keeps_timestamps(tmp):
    # A child whose stderr was redirected inherits JOURNAL_STREAM but writes elsewhere (systemd.exec(5)).
    lines = read_journal_lines(tmp, False)
    assert lines
    for line in lines:
        assert TIMESTAMP.match(line) and not line.startswith("<"), line


def render_units(tmp):
    """The units as meson renders them, with ExecStart= naming the tools of this build (verify checks
    that each command exists and is executable)."""
    bindir = os.path.join(tmp, "bin")
    os.makedirs(bindir)
    for name in ("tn-route", "tn-vnet", "tn-tun", "tn-forward", "tn-watch"):
        os.symlink(harness.tool(name), os.path.join(bindir, name))
    out = {"system": [], "user": []}
    for kind, units, src in (("system", SYSTEM_UNITS, "systemd"), ("user", USER_UNITS, "systemd/user")):
        d = os.path.join(tmp, kind)
        os.makedirs(d)
        for u in units:
            with open(os.path.join(ROOT, src, u + ".in")) as f:
                text = f.read().replace("@bindir@", bindir)
            assert "@bindir@" not in text, u
            path = os.path.join(d, u)
            with open(path, "w") as f:
                f.write(text)
            out[kind].append(path)
    return out


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
@pytest.mark.parametrize("kind", ["system", "user"])
def test_units_verify(tmp, kind):
    units = render_units(tmp)[kind]
    env = {**os.environ}
    # --man=no: the pages in Documentation= are not installed from a build tree (deb_check.sh checks
    # them against the installed package).
    args = ["systemd-analyze", "verify", "--man=no"]
    if kind == "user":
        # The user manager wants a runtime dir even to verify; no running systemd is needed.
        xdg = os.path.join(tmp, "xdg")
        os.makedirs(xdg, mode=0o700)
        env["XDG_RUNTIME_DIR"] = xdg
        args.insert(1, "--user")
    for unit in units:
        r = subprocess.run(args + [unit], capture_output=True, text=True, env=env, timeout=60)
        # verify exits 0 on warnings too ("Unknown key", "Failed to parse ... ignoring"): any output fails.
        assert r.returncode == 0 and r.stderr.strip() == "" and r.stdout.strip() == "", \
            f"{os.path.basename(unit)}:\n{r.stdout}{r.stderr}"


def test_meson_installs_every_unit():
    if not BUILD:
        pytest.skip("TN_BUILD_ROOT not set")
    for u in SYSTEM_UNITS:
        assert os.path.isfile(os.path.join(BUILD, "systemd", u)), u
    for u in USER_UNITS:
        assert os.path.isfile(os.path.join(BUILD, "systemd", "user", u)), u
