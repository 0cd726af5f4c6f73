"""The demo (examples/demo.sh, run by scripts/demo.sh) keeps what it printed alive: on a terminal until
Enter, with --keep until a signal; without either (CI, a pipe) it ends after printing, as the
end-to-end demo test in test_relay.py checks."""
import os
import pty
import re
import signal
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from relay_env import ROUTE  # noqa: E402

DEMO = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "demo.sh")
BUILD = os.path.dirname(os.path.dirname(os.path.dirname(ROUTE)))  # BUILD/tools/tn-route/tn-route


def read_until(fd, marker, proc):
    """Reads fd until `marker` appears (or the demo ends: then the test fails with what it printed)."""
    out = b""
    while marker not in out:
        try:
            b = os.read(fd, 4096)
        except OSError:  # a pty reads EIO once the other side is gone
            b = b""
        if not b:
            proc.wait(timeout=60)
            raise AssertionError(f"demo ended (exit {proc.returncode}) before printing {marker!r}:\n{out.decode(errors='replace')}")
        out += b
    return out.decode(errors="replace")


def dashboard_answers(text):
    port = re.search(r"dashboard  http://127\.0\.0\.1:(\d+)/", text).group(1)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=30) as r:
        return r.status == 200 and b"vnets" in r.read()


def temp_dir_of(text):
    return os.path.dirname(re.search(r"TN_STATE_DIR=(\S+)\)", text).group(1))


def test_keep_stays_up_until_a_signal_without_a_tty():
    p = subprocess.Popen(["bash", DEMO, BUILD, "--keep"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    try:
        text = read_until(p.stdout.fileno(), b"demo up", p)
        assert dashboard_answers(text), text  # the URL it printed still works
        assert p.poll() is None
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=60) == 143
        assert not os.path.exists(temp_dir_of(text)), "demo left its temp dir behind"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_on_a_terminal_it_stays_up_until_enter():
    master, slave = pty.openpty()
    p = subprocess.Popen(["bash", DEMO, BUILD], stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    try:
        text = read_until(master, b"press Enter", p)
        assert dashboard_answers(text), text
        assert p.poll() is None
        os.write(master, b"\n")
        assert p.wait(timeout=60) == 0
        assert not os.path.exists(temp_dir_of(text)), "demo left its temp dir behind"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)


def test_a_bad_option_is_a_usage_error():
    r = subprocess.run(["bash", DEMO, BUILD, "--kep"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode == 64 and "usage: demo.sh BUILD_DIR [--keep]" in r.stderr
