"""The shared test parts do what the other tests rely on: wait_for reports what it waited for, free_port
never repeats itself, the echo/hash server echoes with half-close and hashes, and a namespaced sshd
leaves no session behind and never shares a subnet with another test's."""
import hashlib
import os
import secrets
import socket
import subprocess

import pytest

import harness


def test_wait_for_returns_the_value_and_names_what_timed_out():
    calls = []
    assert harness.wait_for(lambda: calls.append(1) or (len(calls) >= 3 and "ok"), timeout=10) == "ok"
    with pytest.raises(AssertionError, match=r"waiting for the moon \(last: 0\)"):
        harness.wait_for(lambda: 0, timeout=0.1, what="the moon")
    with pytest.raises(AssertionError, match="ConnectionRefusedError"):
        harness.wait_for(lambda: socket.create_connection(("127.0.0.1", 1)), timeout=0.1, errors=(OSError,))
    with pytest.raises(KeyError):  # an exception not listed is a failure at once
        harness.wait_for(lambda: {}["x"], timeout=10)


def test_free_port_never_hands_one_process_the_same_port_twice():
    # Two thousand draws from ~28,000 ephemeral ports collide with near certainty unless free_port
    # remembers what it gave (a route's listener and its HTTP listener once got the same port).
    ports = [harness.free_port() for _ in range(2000)]
    base = harness.free_port_range(3)
    assert len(set(ports)) == len(ports)
    assert not set(ports) & {base, base + 1, base + 2}


@pytest.mark.parametrize("digest", [False, True])
def test_echo_hash_server(digest):
    data = os.urandom(3 << 20)
    with harness.EchoHashServer(digest=digest) as server, socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)  # the server's EOF follows ours
        got = b""
        while chunk := s.recv(1 << 16):
            got += chunk
        assert server.accepted == 1
    assert got == (hashlib.sha256(data).hexdigest().encode() if digest else data)


def test_netns_sshd_stops_its_sessions_before_the_namespace_goes(client):
    if not harness.is_root():
        pytest.skip("needs root for network namespaces and a throwaway sshd user")
    with harness.netns_sshd() as (ns, _, sshd):
        sshd.user.authorize(client.key())
        client.trust(sshd)
        session = subprocess.Popen(["ssh", "-F", "/dev/null", "-i", os.path.join(client.ssh_dir, "id_ed25519"),
                                    "-o", f"UserKnownHostsFile={client.known_hosts}", "-o", "BatchMode=yes",
                                    "-p", str(sshd.port), f"{sshd.user.name}@{sshd.listen}", "echo up; exec sleep 600"],
                                   stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=client.env())
        # And a connection that never authenticates: its sshd child runs as sshd's own unprivileged
        # user, not as the test user, so removing the test user does not end it.
        preauth = socket.create_connection((sshd.listen, sshd.port), timeout=10)
        try:
            assert session.stdout.readline() == b"up\n"
            assert preauth.recv(64).startswith(b"SSH-2.0-")
            forked = harness.descendants(sshd.proc.pid)
            assert forked, "the session's processes"
            # Leaving the block while the session runs: the client sits on the host, out of reach of the
            # namespace, so only stopping the session's processes ends them.
        except BaseException:
            harness.stop_process(session)
            preauth.close()
            raise
    try:
        left = [pid for pid in forked if harness.alive(pid)]
        assert left == [], f"sshd session processes left behind: {left}"
        assert subprocess.run(["ip", "netns", "pids", ns.name], capture_output=True).returncode != 0  # gone
    finally:
        harness.stop_process(session)
        preauth.close()


def test_netns_sshd_takes_a_subnet_no_other_test_holds_on_the_host():
    if not harness.is_root():
        pytest.skip("needs root for network namespaces and a throwaway sshd user")
    # Another test's links hold every SUBNET.N but one (a veth end here, on a subnet no other test
    # uses): the sshd must come up on the one left, not on top of a link that is already there.
    held = "tvh" + secrets.token_hex(3)
    harness.run(["ip", "link", "add", held, "type", "veth", "peer", "name", held + "p"])
    try:
        batch = "".join(f"addr add 10.232.{n}.1/32 dev {held}\n" for n in range(10, 251) if n != 77)
        harness.run(["ip", "-batch", "-"], input=batch)
        with harness.netns_sshd(subnet="10.232") as (_, _, sshd):
            assert sshd.listen == "10.232.77.2"
    finally:
        harness.run(["ip", "link", "del", held], check=False)
