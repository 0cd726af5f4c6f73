"""Abuse tests for tn-vnet's listeners with the real binaries: a flood that exhausts the vnet's file
descriptors (EMFILE under a low RLIMIT_NOFILE) must not stop a use port or the control socket from
accepting for good; once the flood is gone, clients that waited meanwhile and new ones are served."""
import contextlib
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(__file__))
from relay_env import Relay, VNET, recv_all, roundtrip, wait_for, echo  # noqa: E402,F401,F811
import harness  # noqa: E402

NOFILE = 48  # enough for the vnet at rest (control connection, pools, ctl socket, lock, epoll), not for the flood
FLOOD = 300


def test_emfile_flood_on_a_use_port_then_clients_are_served(echo):
    relay = Relay(tls=False)
    flood = []
    try:
        relay.start_route()
        use_port = harness.free_port()
        relay.start_vnet("home", serves=[{"name": "echo", "id": 700, "port": echo.port}])
        cfg = relay.vnet_config("office", uses=[{"name": "echo", "id": 700, "port": use_port}])
        relay.spawn("office", ["prlimit", f"--nofile={NOFILE}:{NOFILE}", VNET, "-c", cfg])
        relay.wait_use("office", "echo")
        assert roundtrip(use_port, b"before")[1] == 6
        # Connections that hold their link open: the vnet runs out of descriptors and accept() fails.
        for _ in range(FLOOD):
            flood.append(socket.create_connection(("127.0.0.1", use_port), timeout=30))
        wait_for(lambda: "Too many open files" in relay.log("office"), timeout=60, what="the vnet hit EMFILE")
        # Clients that arrive while it is exhausted wait in the backlogs: one on the use port ...
        waiting = socket.create_connection(("127.0.0.1", use_port), timeout=60)
        waiting.sendall(b"waited")
        waiting.shutdown(socket.SHUT_WR)
        # ... and one on the control socket.
        ctl = socket.socket(socket.AF_UNIX)
        ctl.settimeout(60)
        ctl.connect(relay.socket_of("office"))
        ctl.sendall(b"show\x1fvnet\n")
        for s in flood:
            s.close()
        flood.clear()
        # Both listeners took up accepting again by themselves: the waiting clients get their answers.
        assert recv_all(waiting) == b"waited"
        assert recv_all(ctl).startswith(b"0\nname office")
        assert roundtrip(use_port, b"after")[1] == 5
        relay.ctl("office", "show", "vnet")
        assert relay.procs["office"].poll() is None
    finally:
        for s in flood:
            with contextlib.suppress(OSError):
                s.close()
        print(relay.all_logs()[-20000:])
        relay.close()
