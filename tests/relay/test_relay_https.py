"""tn-route's HTTPS vhosts ([http] listen_tls) end to end: two HTTPS sites, each a real TLS server on
loopback with its own certificate from a throwaway CA made here with openssl, behind one route port,
reached by SNI with `curl --resolve` and certificates verified end to end (the route relays the TLS
unopened). Then what a hostile client can send: no SNI, an unknown name, a 300-byte name, a
ClientHello cut anywhere, bytes that are not TLS, and a slowloris flood that must not block others.
Each gets a fatal TLS alert and a count in status."""
import os
import socket
import ssl
import struct
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from relay_env import Relay, Web, recv_all, wait_for  # noqa: E402
from test_relay_abuse import HalfOpenFlood  # noqa: E402
import harness  # noqa: E402

SITES = ("site1.example.test", "site2.example.test")
ALERT = {"handshake_failure": 40, "decode_error": 50, "internal_error": 80, "unrecognized_name": 112}


def openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def make_ca_and_certs(d):
    """A CA and one certificate per site (P-256, a day), all in directory `d`."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=tn test CA", cwd=d)
    for site in SITES:
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{site}.key",
                "-out", f"{site}.csr", "-subj", f"/CN={site}", cwd=d)
        with open(os.path.join(d, f"{site}.ext"), "w") as f:
            f.write(f"subjectAltName = DNS:{site}\n")
        openssl("x509", "-req", "-in", f"{site}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
                "-out", f"{site}.crt", "-extfile", f"{site}.ext", cwd=d)


def server_context(d, site):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, f"{site}.crt"), os.path.join(d, f"{site}.key"))
    return ctx


@pytest.fixture
def https():
    """A route with listen_tls and two HTTPS sites behind it: (relay, port, ca path)."""
    relay = Relay()
    webs = []
    try:
        make_ca_and_certs(relay.dir)
        webs = [Web(f"site{i + 1}", tls=server_context(relay.dir, site)) for i, site in enumerate(SITES)]
        port = harness.free_port()
        relay.route_extra = f'\n[http]\nlisten_tls = "127.0.0.1:{port}"\n'
        relay.start_route()
        harness.wait_port(port)
        for i, (site, web) in enumerate(zip(SITES, webs)):
            relay.start_vnet(f"v{i + 1}", serves=[{"name": "https", "port": web.port, "custom_domains": [site]}])
            relay.wait_serve(f"v{i + 1}", "https")
        yield relay, port, os.path.join(relay.dir, "ca.crt")
    finally:
        print(relay.all_logs())
        for w in webs:
            w.close()
        relay.close()


def curl(port, site, ca, path="/"):
    return subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", ca, "--resolve", f"{site}:{port}:127.0.0.1",
                           f"https://{site}:{port}{path}"], capture_output=True, text=True)


def refused(relay):
    return relay.status()["tls_vhost"]["refused"]


def alert_after(port, data, shut=True, timeout=30):
    """Sends `data` to the TLS port (then EOF when `shut`); returns what comes back up to the close."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        return recv_all(s)


def alert(name):
    return bytes([21, 3, 1, 0, 2, 2, ALERT[name]])


def client_hello(host):
    """A ClientHello as Python's OpenSSL sends it for `host` (None: no SNI)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    out = ssl.MemoryBIO()
    conn = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname=host)
    with pytest.raises(ssl.SSLWantReadError):
        conn.do_handshake()
    return out.read()


def hand_hello(name):
    """A minimal ClientHello with `name` (bytes) as its host_name: for names OpenSSL would not send."""
    entry = b"\x00" + struct.pack(">H", len(name)) + name
    sni = struct.pack(">HHH", 0, len(entry) + 2, len(entry)) + entry
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + struct.pack(">H", len(sni)) + sni
    msg = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack(">H", len(msg)) + msg


def test_two_https_sites_behind_one_port_by_sni_verified_end_to_end(https):
    relay, port, ca = https
    for i, site in enumerate(SITES):
        r = curl(port, site, ca, f"/p{i}")
        assert r.returncode == 0, r.stderr + relay.all_logs()
        assert r.stdout == f"site{i + 1} /p{i} {site}:{port}"
    # The certificate the client checked is the site's own: the route holds no key of theirs.
    for site in SITES:
        ctx = ssl.create_default_context(cafile=ca)
        with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
            with ctx.wrap_socket(raw, server_hostname=site) as tls:
                assert dict(x[0] for x in tls.getpeercert()["subject"])["commonName"] == site
    st = relay.status()
    assert st["https"] == f"127.0.0.1:{port}"
    assert st["tls_vhost"]["links"] >= 4 and sum(st["tls_vhost"]["refused"].values()) == 0


def test_no_sni_unknown_name_long_name_and_garbage_get_an_alert_and_are_counted(https):
    relay, port, ca = https
    assert alert_after(port, client_hello(None)) == alert("unrecognized_name")
    assert alert_after(port, client_hello("nobody.example.test")) == alert("unrecognized_name")
    r = curl(port, "other.example.test", ca)
    assert r.returncode != 0
    assert alert_after(port, hand_hello(b"a" * 300)) == alert("decode_error")  # an SNI of 300 bytes
    assert alert_after(port, hand_hello(b"evil\x1b[2J.example.test")) == alert("decode_error")
    assert alert_after(port, b"GET / HTTP/1.1\r\nHost: site1.example.test\r\n\r\n") == alert("decode_error")
    c = refused(relay)
    assert (c["no_sni"], c["unknown_name"], c["bad_hello"]) == (1, 2, 3), c
    assert "\x1b" not in relay.log("route")
    # The sites still work.
    assert curl(port, SITES[0], ca).returncode == 0


def test_a_client_hello_cut_anywhere_is_an_alert_and_counted(https):
    relay, port, _ = https
    hello = client_hello(SITES[0])
    cuts = sorted({1, 3, 5, 6, 9, 43, 44, 100, len(hello) // 2, len(hello) - 1})
    for n in cuts:
        assert alert_after(port, hello[:n]) == alert("decode_error"), n
    wait_for(lambda: refused(relay)["cut"] == len(cuts), what="every cut counted")
    # The whole hello, sent a byte at a time, is relayed: the route decides on what has arrived.
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(hello)):
            s.sendall(hello[i:i + 1])
        wait_for(lambda: relay.status()["tls_vhost"]["links"] >= 1, what="the slow hello relayed")


def test_slowloris_on_the_tls_port_does_not_block_others_and_times_out(https):
    relay, port, ca = https
    # 300 clients from 30 addresses that start a record and never finish their hello.
    with HalfOpenFlood(port, count=300, sources=30, payload=b"\x16\x03\x01", net=6) as flood:
        wait_for(lambda: flood.opened >= 300, 60, "the half-sent hellos")
        for _ in range(3):
            for i, site in enumerate(SITES):
                r = curl(port, site, ca)
                assert r.returncode == 0 and r.stdout.startswith(f"site{i + 1} "), r.stderr
    # One that stalls alone gets the alert when its time is up (as the HTTP head timeout), counted.
    before = refused(relay)["timeout"]
    assert alert_after(port, b"\x16", shut=False) == alert("handshake_failure")
    assert refused(relay)["timeout"] == before + 1
