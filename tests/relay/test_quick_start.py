"""`tn-vnet serve` and `tn-vnet use` without a config file (like `frpc tcp`): one serve and one use from
flags, through a real tn-route on loopback; bad flags are usage errors (64) naming the flag."""
import hashlib
import os
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from relay_env import VNET, TOKEN, Relay, EchoHashServer, roundtrip  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402


@pytest.fixture
def relay():
    r = Relay()
    r.start_route()
    yield r
    r.close()


def token_file(relay, mode=0o600):
    path = os.path.join(relay.dir, f"g-{mode:o}.token")
    with open(path, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(path, mode)
    return path


def common(relay, tok=None):
    return ["--route", f"127.0.0.1:{relay.port}", "--token-file", tok or token_file(relay), "--fingerprint",
            relay.fingerprint, "--group", "g"]


def check_bytes(port):
    data = os.urandom(1 << 20)
    assert roundtrip(port, data) == (hashlib.sha256(data).hexdigest(), len(data))


def test_serve_and_use_from_flags_carry_tcp(relay):
    echo = EchoHashServer()
    use_port, remote = harness.free_port(), harness.free_port()
    try:
        relay.spawn("serve-700", [VNET, "serve", *common(relay), "--id", "700", "--port", str(echo.port),
                                  "--remote-port", str(remote)])
        relay.spawn("use-700", [VNET, "use", *common(relay), "--id", "700", "--port", str(use_port)])
        relay.wait_serve("serve-700", "serve-700")
        relay.wait_use("use-700", "use-700")
        check_bytes(use_port)  # through the use
        harness.wait_port(remote)
        check_bytes(remote)  # and through the route's public port
        # The route sees one vnet for each, in group g, and serve 700.
        st = relay.status()
        assert sorted(v["name"] for v in st["vnets"]) == ["serve-700", "use-700"], st
        assert any(s["id"] == 700 for v in st["vnets"] for s in v.get("serves", [])), st
    finally:
        echo.close()


def test_a_dynamic_serve_gets_an_id_from_the_route(relay):
    echo = EchoHashServer()
    try:
        relay.spawn("serve-p", [VNET, "serve", *common(relay), "--name", "dyn", "--port", str(echo.port)])
        s = relay.wait_serve("dyn", "dyn")
        assert 1 <= s["id"] <= 499, s
    finally:
        echo.close()


@pytest.mark.parametrize("sub,extra,needle", [
    ("use", ["--port", "2222"], "--id"),  # use needs the id
    ("use", ["--id", "0", "--port", "2222"], "--id"),
    ("serve", ["--id", "1000", "--port", "22"], "--id"),
    ("serve", ["--port", "0"], "--port"),
    ("use", ["--id", "700", "--port", "2222", "--remote-port", "1"], "remote-port"),
])
def test_bad_flags_are_usage_errors(relay, sub, extra, needle):
    r = subprocess.run([VNET, sub, *common(relay), *extra], capture_output=True, text=True, env=relay.env(), timeout=30)
    assert r.returncode == 64 and needle in r.stderr and r.stdout == "", r.stderr


def test_bad_route_fingerprint_or_token_file_are_usage_errors(relay):
    base = ["--id", "700", "--port", "2222"]
    for args, needle in [
        (["--route", "nope", "--token-file", token_file(relay), "--fingerprint", relay.fingerprint], "--route"),
        (["--route", "127.0.0.1:1", "--token-file", token_file(relay), "--fingerprint", "xyz"], "--fingerprint"),
        (["--route", "127.0.0.1:1", "--token-file", token_file(relay, 0o644), "--fingerprint", relay.fingerprint], "chmod 600"),
        (["--route", "127.0.0.1:1", "--token-file", "/nonexistent/t", "--fingerprint", relay.fingerprint], "--token-file"),
    ]:
        r = subprocess.run([VNET, "use", *args, *base], capture_output=True, text=True, env=relay.env(), timeout=30)
        assert r.returncode == 64 and needle in r.stderr, (args, r.stderr)


def test_sighup_right_after_start_keeps_a_quick_start_running(relay):
    """SIGHUP (logrotate, a careless `systemctl reload`) sent as soon as the control socket exists:
    the agent took its signals only after opening its sockets, so an early SIGHUP killed it; and a
    quick start has no file to reload, which is said once at info level, not logged as an error."""
    echo = EchoHashServer()
    try:
        p = relay.spawn("serve-hup", [VNET, "serve", *common(relay), "--id", "701", "--port", str(echo.port)])
        harness.wait_for(lambda: p.poll() is not None or relay.socket_of("serve-701"), what="the control socket",
                         errors=(OSError,))
        p.send_signal(signal.SIGHUP)
        harness.wait_for(lambda: "SIGHUP ignored" in relay.log("serve-hup") or p.poll() is not None,
                         what="the SIGHUP handled")
        assert p.poll() is None, relay.log("serve-hup")
        relay.wait_serve("serve-701", "serve-701")
        assert " error" not in relay.log("serve-hup").lower(), relay.log("serve-hup")
    finally:
        echo.close()
