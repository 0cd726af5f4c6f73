#!/usr/bin/python3
"""A --persist master that speaks protocol version 1 (TNX1, as tn-exec did before the request kinds),
or with --protocol another version, for tests: it listens on the socket, records its PID beside it (unless --no-pid-file), and answers
every request as the v1 master answered a frame it could not read: descriptors closed unused, an
error frame in TNX1. It prints "ready", then one "request" line per connection.

  fake_old_master.py __master --socket PATH [--no-pid-file] [--protocol TNX3]"""
import array
import os
import socket
import struct
import sys

args = sys.argv[1:]
path = args[args.index("--socket") + 1]
magic = (args[args.index("--protocol") + 1] if "--protocol" in args else "TNX1").encode()
if os.path.exists(path):
    os.unlink(path)
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(8)
if "--no-pid-file" not in args:
    with open(path + ".pid", "w") as f:
        f.write(f"{os.getpid()}\n")
print("ready", flush=True)
while True:
    conn, _ = srv.accept()
    with conn:
        # v1 read the 8-byte head, found another magic and gave up on the frame.
        _, anc, _, _ = conn.recvmsg(8, socket.CMSG_SPACE(4 * 4))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
                for fd in fds:
                    os.close(fd)
        print("request", flush=True)  # before the reply: the client may stop us right after it
        reply = b"error 65 persist: not a tn-exec master (version mismatch? stop it and retry)"
        conn.sendall(magic + struct.pack(">I", len(reply)) + reply)
