"""End-to-end links ([vnet] e2e_secret, PROTOCOL.relay.md §12) with a real route and real vnets on
loopback. A recording relay between the vnets and a plain route (tls = false: the strongest position a
route has, it sees every frame in clear) shows a marker in clear without e2e and never with it; a relay
that swaps the handshake's ephemeral key, a vnet with another secret, and e2e on one side only are all
refused before any byte reaches the service, and the vnets go on serving other links."""
import base64
import hashlib
import os
import socket
import struct
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

sys.path.insert(0, os.path.dirname(__file__))
from relay_env import Relay, EchoHashServer, roundtrip, wait_for, VNET  # noqa: E402
from recorder import Recorder  # noqa: E402
import harness  # noqa: E402


def genkey(relay):
    r = subprocess.run([VNET, "genkey"], capture_output=True, text=True, env=relay.env(), check=True)
    key = r.stdout.strip()
    assert len(base64.b64decode(key, validate=True)) == 32
    return key


def e2e_line(key):
    return f'e2e_secret = "{key}"' if key else ""


def chain(tls, port, home_key, office_key, pool=2, recorder=None, udp=False):
    """Route (behind `recorder` when given), home serving `port` as id 700, office using it. If it
    fails on the way, what it started is stopped before the error goes on (the callers' `try` starts
    after it returns)."""
    relay = Relay(tls=tls)
    rec = None
    try:
        relay.start_route()
        if recorder:
            rec = recorder(relay.port)
            relay.port = rec.port
        use_port = harness.free_port()
        kind = {"type": "udp"} if udp else {}
        relay.start_vnet("home", serves=[{"name": "svc", "id": 700, "port": port, **kind}],
                         extra_vnet=f"link_pool = {pool}\n{e2e_line(home_key)}")
        relay.start_vnet("office", uses=[{"name": "svc", "id": 700, "port": use_port, **kind}],
                         extra_vnet=f"link_pool = {pool}\n{e2e_line(office_key)}")
        relay.wait_use("office", "svc")
    except BaseException:
        print(relay.all_logs())
        if rec:
            rec.close()
        relay.close()
        raise
    return relay, rec, use_port


def refused(port, data=b"hello"):
    """A client's connection ends without a byte of data coming back."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=15)
    except ConnectionResetError:  # the refusal can beat our connect() on a loaded machine
        return True
    with s:
        try:
            s.sendall(data)
            return s.recv(100) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True


@pytest.mark.parametrize("tls", [True, False])
def test_e2e_carries_an_echo_and_16_mib_intact_also_on_reused_links(tls):
    echo = EchoHashServer()
    relay = None
    try:
        relay = Relay(tls=tls)
        key = genkey(relay)
        relay.close()
        relay, _, use_port = chain(tls, echo.port, key, key)
        assert roundtrip(use_port, b"ping")[1] == 4
        data = os.urandom(16 << 20)
        assert roundtrip(use_port, data) == (hashlib.sha256(data).hexdigest(), len(data))
        # Pooled links are reused: each use runs its own handshake.
        for i in range(5):
            assert roundtrip(use_port, b"again %d" % i)[1] == 7
        st = relay.status()
        assert st["links"]["reused"] >= 1, st["links"]
    finally:
        if relay:
            print(relay.all_logs())
            relay.close()
        echo.close()


class RecordSwapper(Recorder):
    """A recording relay that, like a route that wants to read the stream, replaces the using vnet's
    handshake ephemeral in the first LINK_OPEN of each link (tls = false: the setup frames are in clear
    and the handshake record is sealed under the all-zero key, which anyone on the path can open and
    make again)."""

    # hello (8), frame header (8), vnet_id (4), serve id (2), mac (32), cipher (1): the record follows.
    REC_AT = 8 + 8 + 4 + 2 + 32 + 1
    REC_LEN = 4 + 65 + 16

    def __init__(self, target_port):
        super().__init__(target_port)
        self.swapped = 0
        hk = HKDF(algorithm=hashes.SHA256(), length=44, salt=None, info=b"tn-relay-2 use>serve 2")
        km = hk.derive(bytes(32))
        self.aead, self.iv = AESGCM(km[:32]), km[32:]
        self.mallory = X25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def _pump(self, conn, up):
        if not up:
            return super()._pump(conn, up)
        # Hold the vnet's first bytes until the record is whole; swap the key in it if it is a LINK_OPEN.
        buf = b""
        sent = 0
        try:
            while len(buf) < self.REC_AT + self.REC_LEN:
                b = conn.client.recv(65536)
                if not b:
                    break
                buf += b
                if not sent and len(buf) >= 8:  # the hello goes on at once: the route answers it with its own
                    conn.server.sendall(buf[:8])
                    sent = 8
                if len(buf) >= 10 and buf[8:10] != b"\x00\x60":
                    break
            with conn.lock:
                conn.up.extend(buf)
            if len(buf) >= self.REC_AT + self.REC_LEN and buf[8:10] == b"\x00\x60" and buf[54] == 0x80:
                buf = self._swap(buf)
            conn.server.sendall(buf[sent:])
        except OSError:
            return
        super()._pump(conn, up)

    def _swap(self, buf):
        at = self.REC_AT
        head, body = buf[at:at + 4], buf[at + 4:at + self.REC_LEN]
        plain = self.aead.decrypt(self.iv, body, head)  # record 0: nonce = IV
        assert plain[0] == 1 and len(plain) == 65
        plain = plain[:1] + self.mallory + plain[33:]
        self.swapped += 1
        return buf[:at] + head + self.aead.encrypt(self.iv, plain, head) + buf[at + self.REC_LEN:]


def marker_run(key):
    svc = EchoHashServer()
    relay, rec, use_port = chain(False, svc.port, key, key, pool=0, recorder=Recorder)
    try:
        marker = b"TN-E2E-MARKER-" + os.urandom(8).hex().encode()
        s = socket.create_connection(("127.0.0.1", use_port), timeout=15)
        with s:
            s.sendall(marker)
            got = b""
            while len(got) < len(marker):
                got += s.recv(100)
            assert got == marker
        return [(up, down) for _, up, down in rec.everything() if up[:4] == b"TNRL"], marker
    finally:
        print(relay.all_logs())
        rec.close()
        relay.close()
        svc.close()


def test_a_recording_relay_sees_the_marker_without_e2e_and_never_with_it():
    links, marker = marker_run(None)
    assert any(marker in up or marker in down for up, down in links), "without e2e the marker travels in clear"
    links, marker = marker_run(base64.b64encode(os.urandom(32)).decode())
    assert links
    assert not any(marker in up or marker in down for up, down in links)
    # The using link: LINK_OPEN says e2e (cipher 0x80), then the handshake record; the records behind
    # it do not open under the all-zero key a plain link's handshake uses, nor read as plaintext.
    using = [up for up, _ in links if up[8:10] == b"\x00\x60"]
    assert using and all(up[54] == 0x80 for up in using)
    up = using[0]
    at = RecordSwapper.REC_AT + RecordSwapper.REC_LEN
    head, = struct.unpack(">I", up[at:at + 4])
    rtype, length = head >> 24, head & 0xFFFFFF
    assert rtype == 1 and length == len(marker)
    body = up[at + 4:at + 4 + length + 16]
    assert len(body) == length + 16
    hk = HKDF(algorithm=hashes.SHA256(), length=44, salt=None, info=b"tn-relay-2 use>serve 2").derive(bytes(32))
    with pytest.raises(Exception):
        AESGCM(hk[:32]).decrypt(bytes(a ^ b for a, b in zip(hk[32:], (1).to_bytes(12, "big"))), body, up[at:at + 4])


def test_a_relay_that_swaps_the_ephemeral_key_is_refused_and_nothing_reaches_the_service():
    key = base64.b64encode(os.urandom(32)).decode()
    svc = EchoHashServer()
    relay, rec, use_port = chain(False, svc.port, key, key, pool=0, recorder=RecordSwapper)
    try:
        assert refused(use_port, b"secret data")
        wait_for(lambda: "e2e refused" in relay.log("home"), what="home logs the refusal")
        assert rec.swapped >= 1
        assert svc.received == 0
        assert "does not match our e2e_secret" in relay.log("home")
        assert relay.status()["vnets"] and len(relay.status()["vnets"]) == 2
    finally:
        print(relay.all_logs())
        rec.close()
        relay.close()
        svc.close()


@pytest.mark.parametrize("home,office", [("k1", "k2"), ("k1", None), (None, "k1")])
def test_another_secret_or_e2e_on_one_side_only_is_refused_and_the_vnets_go_on(home, office):
    keys = {"k1": base64.b64encode(os.urandom(32)).decode(), "k2": base64.b64encode(os.urandom(32)).decode(), None: None}
    svc = EchoHashServer()
    relay, _, use_port = chain(True, svc.port, keys[home], keys[office])
    try:
        for _ in range(3):
            assert refused(use_port)
        wait_for(lambda: "e2e" in relay.log("home") and "refused" in relay.log("home"), what="home logs the refusal")
        assert svc.received == 0
        # Counted where it was refused (the serving vnet, which checks the flag and the first MAC).
        wait_for(lambda: relay.ctl_json("home", "show", "vnet")["e2e_refused"] >= 3, what="three refusals counted")
        assert relay.ctl_json("home", "show", "vnet")["e2e"] == (home is not None)
        # The sessions stay up and the serve stays registered.
        assert len(relay.status()["vnets"]) == 2
        assert [u["state"] for u in relay.ctl_json("office", "show", "use")] == ["attached"]
    finally:
        print(relay.all_logs())
        relay.close()
        svc.close()


def test_bad_secrets_and_e2e_with_remote_port_are_config_errors():
    relay = Relay(tls=False)
    try:
        for bad in ('e2e_secret = "correct horse battery staple"', 'e2e_secret = "' + base64.b64encode(os.urandom(16)).decode() + '"'):
            path = os.path.join(relay.dir, "bad.toml")
            with open(path, "w") as f:
                f.write(f'[route]\naddress = "127.0.0.1:1"\ntoken = "t"\ntls = false\n[vnet]\nname = "x"\n{bad}\n')
            r = subprocess.run([VNET, "--check-config", "-c", path], capture_output=True, text=True, env=relay.env())
            assert r.returncode == 78, r.stderr
            assert "tn-vnet genkey" in r.stderr
        key = genkey(relay)
        with open(path, "w") as f:
            f.write(f'[route]\naddress = "127.0.0.1:1"\ntoken = "t"\ntls = false\n[vnet]\nname = "x"\ne2e_secret = "{key}"\n'
                    '[[serve]]\nname = "w"\nport = 80\nremote_port = 8080\n')
        r = subprocess.run([VNET, "--check-config", "-c", path], capture_output=True, text=True, env=relay.env())
        assert r.returncode == 78 and "remote_port" in r.stderr, r.stderr
        # e2e_secret_file: relative to the config's folder, owner-only.
        keyfile = os.path.join(relay.dir, "e2e.key")
        with open(os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(key + "\n")
        with open(path, "w") as f:
            f.write('[route]\naddress = "127.0.0.1:1"\ntoken = "t"\ntls = false\n[vnet]\nname = "x"\ne2e_secret_file = "e2e.key"\n')
        r = subprocess.run([VNET, "--check-config", "-c", path], capture_output=True, text=True, env=relay.env())
        assert r.returncode == 0, r.stderr
        os.chmod(keyfile, 0o644)
        r = subprocess.run([VNET, "--check-config", "-c", path], capture_output=True, text=True, env=relay.env())
        assert r.returncode == 78 and "chmod" in r.stderr, r.stderr
    finally:
        relay.close()


@pytest.mark.parametrize("tls", [True, False])
def test_e2e_carries_udp_datagrams_whole(tls):
    from test_relay_udp import UdpEcho, udp_client
    echo = UdpEcho()
    key = base64.b64encode(os.urandom(32)).decode()
    relay, _, port = chain(tls, echo.port, key, key, udp=True)
    try:
        c = udp_client()
        # While the flow's link opens (the handshake included) its datagrams wait in a 64 KiB queue
        # (PROTOCOL.relay.md §11): the largest ones go once the first came back.
        for batch in ([b"", b"x", os.urandom(1400)], [os.urandom(65507), os.urandom(9000)]):
            for d in batch:
                c.sendto(d, ("127.0.0.1", port))
            got = [c.recvfrom(65535)[0] for _ in batch]
            assert got == batch  # one flow, one link: whole, apart and in order
        c.close()
        # The records the serving vnet opened were end-to-end: a second flow runs its own handshake.
        c2 = udp_client()
        c2.sendto(b"second", ("127.0.0.1", port))
        assert c2.recvfrom(100)[0] == b"second"
        c2.close()
        assert relay.ctl_json("office", "show", "vnet")["e2e"] is True
    finally:
        print(relay.all_logs())
        relay.close()
        echo.close()


def test_reload_turns_e2e_on_for_new_links():
    """A using vnet without the secret is refused by an e2e serving vnet; after `ctl reload` with the
    same secret its next connection carries data: the refusals did not break either vnet."""
    echo = EchoHashServer()
    key = base64.b64encode(os.urandom(32)).decode()
    relay, _, use_port = chain(True, echo.port, key, None)
    try:
        assert refused(use_port)
        path = os.path.join(relay.dir, "office.toml")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("[vnet]\n", f'[vnet]\ne2e_secret = "{key}"\n', 1))
        out = relay.ctl("office", "reload").stdout
        assert "e2e on" in out, out
        assert roundtrip(use_port, b"now end to end")[1] == 14
        assert relay.ctl_json("office", "show", "vnet")["e2e"] is True
    finally:
        print(relay.all_logs())
        relay.close()
        echo.close()
