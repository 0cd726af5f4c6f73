#!/usr/bin/python3
"""bench/exec (e): the paramiko-style workflow of a long-running program, through `tn-exec serve --stdio`
and through paramiko, alternating in one run: log in, run a command, write SIZE from memory to a
remote file, read it back (hashes checked), then many small commands. Both sides are warm processes
(interpreter, paramiko, tn-exec already started); the login is part of the timed workflow.

  serve_workflow.py --tn-exec PATH --host H --port P --user U --key KEY --known-hosts F
                    [--ssh-config F] [--mib 1] [--small 50] [--rounds 3] [--alt-tn-exec PATH]

Prints one JSON object: per side the medians (s) of login, run, put, get, small commands, total.
--alt-tn-exec: a second build (a change under test) joins the alternation as side "alt".
Run by bench/exec/run (part e); standalone it needs Debian's python3-paramiko and a reachable sshd."""
import argparse
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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "tn-exec"))
from serve_client import TnExec  # noqa: E402  (the example's client: what a program would use)


def ok(reply):
    res, out, _ = reply
    if res["exit"] != 0:
        raise RuntimeError(f"exit {res['exit']}: {res.get('error')}")
    return out


def tn_workflow(tn, data, small):
    """The same steps through the example's client (examples/tn-exec/serve_client.py)."""
    t = [time.monotonic()]
    ok(tn.call("open"))
    t.append(time.monotonic())
    code, out, _ = tn.exec_command("uname -s")
    assert code == 0 and out.strip() == b"Linux", out
    t.append(time.monotonic())
    tn.write_file("serve-bench.bin", data)
    t.append(time.monotonic())
    assert hashlib.sha256(tn.read_file("serve-bench.bin")).digest() == hashlib.sha256(data).digest()
    t.append(time.monotonic())
    for i in range(small):
        code, out, _ = tn.exec_command(f"echo {i}")
        assert code == 0 and out == f"{i}\n".encode()
    t.append(time.monotonic())
    ok(tn.call("close"))  # the next round logs in again, as paramiko's does
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
    ap.add_argument("--alt-tn-exec", default="")
    a = ap.parse_args()
    data = os.urandom(int(a.mib * (1 << 20)))
    opts = ["-p", str(a.port), "--known-hosts", a.known_hosts, "-i", a.key]
    if a.ssh_config:
        opts += ["--ssh-config", a.ssh_config]
    serves = {"tn": TnExec(f"{a.user}@{a.host}", opts, exe=a.tn_exec)}
    if a.alt_tn_exec:
        serves["alt"] = TnExec(f"{a.user}@{a.host}", opts, exe=a.alt_tn_exec)
    names = ["login", "run", "put", "get", "small", "total"]
    runs = {side: [] for side in [*serves, "pm"]}
    try:
        for _ in range(a.rounds):
            for side in runs:
                parts = pm_workflow(a, data, a.small) if side == "pm" else tn_workflow(serves[side], data, a.small)
                runs[side].append(parts + [sum(parts)])
    finally:
        for serve in serves.values():
            serve.close(timeout=30)
    med = {side: {n: statistics.median(r[i] for r in rs) for i, n in enumerate(names)} for side, rs in runs.items()}
    med["totals"] = {side: [r[-1] for r in rs] for side, rs in runs.items()}
    med["putget"] = {side: [r[2] + r[3] for r in rs] for side, rs in runs.items()}
    print(json.dumps(med))


if __name__ == "__main__":
    main()
