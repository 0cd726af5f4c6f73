"""tn-exec run --tty on a real local PTY against the real sshd: the remote program sees the window size
and its changes (SIGWINCH), and the local terminal leaves raw mode when tn-exec ends."""
import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios

sys.path.insert(0, os.path.dirname(__file__))
from exec_fixtures import env  # noqa: E402,F401


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def read_until(fd, token, limit=30.0):
    got = b""
    while token not in got:
        r, _, _ = select.select([fd], [], [], limit)
        assert r, f"no {token!r} in {got!r}"
        chunk = os.read(fd, 4096)
        assert chunk, got
        got += chunk
    return got


def test_pty_window_size_follows_and_terminal_is_restored(env):
    master, slave = os.openpty()
    set_size(slave, 40, 100)
    before = termios.tcgetattr(slave)
    script = "stty size; echo ready; read x; stty size; echo end"
    p = subprocess.Popen([env.exe, "run", *env.base, "--tty", env.target, "--shell", script], stdin=slave,
                         stdout=slave, stderr=slave, env=env.client.env(TERM="xterm"), start_new_session=True)
    try:
        out = read_until(master, b"ready")
        assert b"40 100" in out, out
        assert not termios.tcgetattr(slave)[3] & termios.ECHO  # raw while the command runs
        set_size(slave, 50, 120)
        p.send_signal(signal.SIGWINCH)
        os.write(master, b"go\r")
        out = read_until(master, b"end")
        assert b"50 120" in out, out
        assert p.wait(timeout=60) == 0
        assert termios.tcgetattr(slave)[3] == before[3]  # lflag (ECHO, ICANON) as it was
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
        os.close(slave)
