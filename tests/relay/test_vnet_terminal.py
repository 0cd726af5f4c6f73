"""tn-vnet's interactive terminal (`terminal = true`) on a real pseudo-terminal: a log line written while
the prompt is shown erases the prompt's line first and draws the prompt again after it, so log lines
and the prompt never share a line; commands still work and `exit` stops the vnet."""
import os
import pty
import re
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from relay_env import Relay, VNET  # noqa: E402
import harness  # noqa: E402

# A retry line as the pty shows it (its newline became \r\n), timestamp first unless under journald.
LOG_LINE = re.compile(rb"(?:\d{4}-\d\d-\d\dT[\d:.]+Z )?WARN  tn-vnet: \[route=127\.0\.0\.1:\d+\] unavailable[^\r\n]*\r\n")


class Pty:
    """tn-vnet with stdin, stdout and stderr on one pty; everything it draws is kept in `seen`."""

    def __init__(self, cmd, env):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        self.seen = b""

    def read_until(self, pred, what, timeout=30):
        deadline = time.monotonic() + timeout
        while not pred(self.seen):
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {what}; seen: {self.seen!r}"
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: the vnet closed the terminal
                    chunk = b""
                assert chunk, f"terminal closed while waiting for {what}; seen: {self.seen!r}"
                self.seen += chunk

    def type(self, text):
        os.write(self.master, text)

    def close(self):
        harness.stop_process(self.proc)
        os.close(self.master)


def test_log_lines_never_share_the_prompt_line():
    relay = Relay(tls=False)
    relay.port = harness.free_port()  # no route listens there: the vnet logs a retry now and then
    cfg = relay.vnet_config("home", extra_vnet="terminal = true")
    term = Pty([VNET, "-c", cfg], dict(relay.env(), TN_RELAY_TIME_SCALE="0.05"))
    try:
        first_prompt = lambda s: b">: " in s  # noqa: E731
        term.read_until(first_prompt, "the prompt")
        start = term.seen.index(b">: ")
        # Two log lines that came while the prompt was up. The prompt is followed only by the erase
        # sequence (a log line is coming) or by nothing yet.
        term.read_until(lambda s: len(LOG_LINE.findall(s[start:])) >= 2, "two retry log lines after the prompt")
        assert not re.search(rb">: (?!\r\x1b\[K|\Z)", term.seen[start:]), term.seen[start:]
        # Each of them is followed by the prompt again.
        term.read_until(lambda s: s.endswith(b">: "), "the prompt after the last log line")
        after = term.seen[start:]
        for m in LOG_LINE.finditer(after):
            assert after[m.start() - 7:m.start()] == b">: \r\x1b[K", after  # prompt erased, then the line
            assert after[m.end():m.end() + 3] == b">: ", after
        # Commands still work on the redrawn prompt.
        mark = len(term.seen)
        term.type(b"show vnet\n")
        term.read_until(lambda s: b"name home" in s[mark:] and s.endswith(b">: "), "the reply to show vnet")
        term.type(b"exit\n")
        assert term.proc.wait(timeout=30) == 0
    finally:
        term.close()
        relay.close()
