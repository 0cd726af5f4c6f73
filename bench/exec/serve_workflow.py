#!/usr/bin/python3
"""bench/exec (e): the paramiko-style workflow of a long-running program, through `tn-exec serve --stdio`
and through paramiko, alternating in one run: log in, run a command, write SIZE from memory to a
remote file, read it back (hashes checked), then many small commands. Both sides are warm processes
(interpreter, paramiko, tn-exec already started); the login is part of the timed workflow.

  serve_workflow.py --tn-exec PATH --host H --port P --user U --key KEY --known-hosts F
                    [--ssh-config F] [--mib 1] [--small 50] [--rounds 3]

Prints one JSON object: per side the medians (s) of login, run, put, get, small commands, total.
Run by bench/exec/run (part e); standalone it needs Debian's python3-paramiko and a reachable sshd."""
import argparse
import base64
import hashlib
import io
import json
import os
import statistics
import subprocess
import sys
import time

sys.path = [p for p in sys.path if "pyenv" not in p]  # Debian's paramiko, not a pyenv without it
import paramiko  # noqa: E402


class Serve:
    """One `tn-exec serve --stdio` process; call() sends a request and returns its result and stdout."""

    def __init__(self, exe, options, env):
        self.proc = subprocess.Popen([exe, "serve", "--stdio", *options], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env)
        self.n = 0

    def call(self, **req):
        self.n += 1
        rid = str(self.n)
        self.proc.stdin.write(json.dumps({"id": rid, **req}).encode() + b"\n")
        self.proc.stdin.flush()
        out = b""
        for line in self.proc.stdout:
            msg = json.loads(line)
            if msg.get("id") != rid:
                continue
            if msg.get("event") == "stdout":
                out += base64.b64decode(msg["data"])
            elif "event" not in msg:
                if msg["exit"] != 0:
                    raise RuntimeError(f"{req['op']}: exit {msg['exit']}: {msg.get('error')}")
                return msg, out
        raise RuntimeError("tn-exec serve ended")

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def tn_workflow(serve, host, data, small):
    t = [time.monotonic()]
    serve.call(op="open", host=host)
    t.append(time.monotonic())
    _, out = serve.call(op="run", host=host, command="uname -s")
    assert out.strip() == b"Linux", out
    t.append(time.monotonic())
    serve.call(op="put", host=host, path="serve-bench.bin", data=base64.b64encode(data).decode())
    t.append(time.monotonic())
    res, _ = serve.call(op="get", host=host, path="serve-bench.bin")
    assert hashlib.sha256(base64.b64decode(res["data"])).digest() == hashlib.sha256(data).digest()
    t.append(time.monotonic())
    for i in range(small):
        _, out = serve.call(op="run", host=host, command=f"echo {i}")
        assert out == f"{i}\n".encode()
    t.append(time.monotonic())
    serve.call(op="close", host=host)  # the next round logs in again, as paramiko's does
    return [b - a for a, b in zip(t, t[1:])]


def pm_workflow(a, data, small):
    def run(c, cmd):
        _, o, e = c.exec_command(cmd)
        out = o.read()
        e.read()
        assert o.channel.recv_exit_status() == 0
        return out
    t = [time.monotonic()]
    c = paramiko.SSHClient()
    c.load_host_keys(a.known_hosts)
    c.set_missing_host_key_policy(paramiko.RejectPolicy())  # host key checked, as tn-exec does
    c.connect(a.host, port=a.port, username=a.user, key_filename=a.key, allow_agent=False, look_for_keys=False,
              timeout=60)
    t.append(time.monotonic())
    assert run(c, "uname -s").strip() == b"Linux"
    t.append(time.monotonic())
    s = c.open_sftp()
    s.putfo(io.BytesIO(data), "serve-bench-pm.bin")  # paramiko at its best: pipelined writes
    t.append(time.monotonic())
    back = io.BytesIO()
    s.getfo("serve-bench-pm.bin", back)  # and prefetched reads
    assert hashlib.sha256(back.getvalue()).digest() == hashlib.sha256(data).digest()
    t.append(time.monotonic())
    for i in range(small):
        assert run(c, f"echo {i}") == f"{i}\n".encode()
    t.append(time.monotonic())
    s.close()
    c.close()
    return [b - a for a, b in zip(t, t[1:])]


def main():
    ap = argparse.ArgumentParser()
    for k in ("--tn-exec", "--host", "--user", "--key", "--known-hosts"):
        ap.add_argument(k, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ssh-config", default="")
    ap.add_argument("--mib", type=float, default=1)
    ap.add_argument("--small", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    data = os.urandom(int(a.mib * (1 << 20)))
    opts = ["-p", str(a.port), "--known-hosts", a.known_hosts, "-i", a.key]
    if a.ssh_config:
        opts += ["--ssh-config", a.ssh_config]
    serve = Serve(a.tn_exec, opts, dict(os.environ))
    target = f"{a.user}@{a.host}"
    names = ["login", "run", "put", "get", "small", "total"]
    runs = {"tn": [], "pm": []}
    try:
        for _ in range(a.rounds):
            for side in ("tn", "pm"):
                parts = tn_workflow(serve, target, data, a.small) if side == "tn" else pm_workflow(a, data, a.small)
                runs[side].append(parts + [sum(parts)])
    finally:
        serve.close()
    med = {side: {n: statistics.median(r[i] for r in rs) for i, n in enumerate(names)} for side, rs in runs.items()}
    med["totals"] = {side: [r[-1] for r in rs] for side, rs in runs.items()}
    print(json.dumps(med))


if __name__ == "__main__":
    main()
