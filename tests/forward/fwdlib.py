"""Helpers for tn-forward tests: a bulk transfer check and running a forward (echo servers: harness.EchoHashServer)."""
import json
import os
import socket
import subprocess
import threading
import time

import harness

FORWARD = harness.tool("tn-forward")


def roundtrip(port, payload, host="127.0.0.1", timeout=60):
    """Sends payload through an echo path while reading it back; returns what came back."""
    s = socket.create_connection((host, port), timeout=timeout)
    got = bytearray()

    def reader():
        while len(got) < len(payload):
            d = s.recv(1 << 16)
            if not d:
                break
            got.extend(d)

    t = threading.Thread(target=reader)
    t.start()
    s.sendall(payload)
    t.join(timeout)
    s.close()
    return bytes(got)


def echo_once(port, host="127.0.0.1", data=b"ping", timeout=5):
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            d = s.recv(100)
            if not d:
                break
            got += d
        return got


class Forward:
    """A running tn-forward with --events; reads events in the background."""

    def __init__(self, client, sshd, *args, config=None):
        cmd = [FORWARD, "--events", "-v"]
        if config:
            cmd += ["-c", config]
        if sshd is not None:
            cmd += ["-p", str(sshd.port)]
        cmd += list(args)
        if sshd is not None:
            cmd += [f"{sshd.user.name}@{sshd.listen}"]
        self.log_path = os.path.join(client.dir, f"forward-{time.monotonic_ns()}.log")
        self.stderr = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, env=client.env(), stdout=subprocess.PIPE, stderr=self.stderr,
                                     stdin=subprocess.DEVNULL, text=True)
        self.events = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.events.append(json.loads(line))
                self.cond.notify_all()
        with self.cond:  # EOF: a waiter that saw the process exit may now decide
            self.cond.notify_all()

    def wait_event(self, kind, count=1, timeout=60, **match):
        """Waits until `count` events of `kind` (with matching fields) have arrived; returns the last."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                hits = [e for e in self.events if e["event"] == kind and all(e.get(k) == v for k, v in match.items())]
                if len(hits) >= count:
                    return hits[count - 1]
                left = deadline - time.monotonic()
                # An exited process's last lines may still be in the pipe: decide only after EOF.
                exited = self.proc.poll() is not None and not self.reader.is_alive()
                if left <= 0 or exited and not hits:
                    raise TimeoutError(f"no {kind} event #{count}; events: {self.events}\n{self.log()}")
                self.cond.wait(min(left, 0.2))

    def wait_until(self, predicate, what, timeout=120):
        """Waits until predicate() holds, checked as events and log lines arrive."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise TimeoutError(f"{what}; events: {self.events}\n{self.log()}")
                self.cond.wait(0.1)

    def kinds(self):
        with self.cond:
            return [e["event"] for e in self.events]

    def wait_ready(self, n_forwards, timeout=30):
        self.wait_event("forward_up", count=n_forwards, timeout=timeout)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        harness.stop_process(self.proc)
        self.stderr.close()
        # The process has ended, but the reader may not have taken its last events yet (a test saw
        # --once exit 75 and then no "lost"): they are all in once the reader reached the end of stdout.
        self.reader.join(timeout=60)
        return self.proc.returncode
