#!/usr/bin/env python3
"""A paramiko-style workflow through `tn-exec serve --stdio`: one login, then run a command, write a
remote file from memory, read it back, and fetch it, each request answered by one result object.

Usage: serve_client.py [user@]host [tn-exec options...]   (e.g. -p 2222 --password-file ~/.pw)
The tn-exec binary is $TN_EXEC (default: tn-exec on PATH)."""
import base64
import json
import os
import subprocess
import sys


class TnExec:
    """The few calls a paramiko script makes, over one tn-exec process (one SSH session per host)."""

    def __init__(self, host, options=(), exe=None):
        self.host = host
        # A 1 MiB buffer: a megabyte of output or of a get comes in a few reads, not hundreds.
        self.proc = subprocess.Popen([exe or os.environ.get("TN_EXEC", "tn-exec"), "serve", "--stdio", *options],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=1 << 20)
        self.next_id = 0

    def call(self, op, data=None, **fields):
        """Sends one request; returns (result, stdout bytes, stderr bytes) once its result arrives.
        `data` (bytes) goes as raw bytes after the request line ("data_bytes"); a result with
        "data_bytes" (a get asked with raw=True) has its raw bytes after its line, put in "data_raw"."""
        self.next_id += 1
        rid = str(self.next_id)
        if data is not None:
            fields["data_bytes"] = len(data)
        self.proc.stdin.write(json.dumps({"id": rid, "op": op, "host": self.host, **fields}).encode() + b"\n")
        if data is not None:  # no base64 and no JSON for the payload: written as it is
            self.proc.stdin.write(data)
        self.proc.stdin.flush()
        out, err = b"", b""
        for line in self.proc.stdout:
            msg = json.loads(line)
            if "data_bytes" in msg:  # read it off even if not ours: the next line starts after it
                msg["data_raw"] = self.proc.stdout.read(msg["data_bytes"])
            if msg.get("id") != rid:
                continue
            if msg.get("event") == "stdout":
                out += base64.b64decode(msg["data"])
            elif msg.get("event") == "stderr":
                err += base64.b64decode(msg["data"])
            else:
                return msg, out, err
        raise RuntimeError("tn-exec serve ended")

    def exec_command(self, command, timeout=None):   # paramiko: client.exec_command(...)
        extra = {"timeout": timeout} if timeout else {}
        res, out, err = self.call("run", command=command, **extra)
        return res["exit"], out, err

    def write_file(self, path, data):                 # paramiko: sftp.open(path, "wb").write(data)
        res, _, _ = self.call("put", path=path, data=data)
        if res["exit"] != 0:
            raise OSError(res["exit"], res.get("error"))

    def read_file(self, path):                        # paramiko: sftp.open(path).read()
        res, _, _ = self.call("get", path=path, raw=True)
        if res["exit"] != 0:
            raise OSError(res["exit"], res.get("error"))
        return res["data_raw"]

    def close(self, timeout=None):
        self.proc.stdin.close()
        return self.proc.wait(timeout=timeout)


def main():
    host, options = sys.argv[1], sys.argv[2:]
    c = TnExec(host, options)
    code, out, err = c.exec_command("mkdir -p tn-serve-demo && uname -s")
    print("run:", code, out.decode().strip())
    payload = b"input data\n" * 1000
    c.write_file("tn-serve-demo/input.txt", payload)
    code, out, _ = c.exec_command("wc -l < tn-serve-demo/input.txt > tn-serve-demo/result.txt && echo done")
    print("run:", code, out.decode().strip())
    assert c.read_file("tn-serve-demo/input.txt") == payload
    print("result:", c.read_file("tn-serve-demo/result.txt").decode().strip())
    res, _, _ = c.call("ls", path="tn-serve-demo")
    print("files:", " ".join(e["name"] for e in res["entries"]))
    return c.close()


if __name__ == "__main__":
    sys.exit(main())
