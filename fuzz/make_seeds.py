#!/usr/bin/env python3
"""Writes the text and packet seed corpora of fuzz/corpus/: HTTP request heads (the shapes
tests/relay/test_route_http.cpp uses), SOCKS5 handshakes (RFC 1928), every example TOML config
(prefixed with the byte that picks its loader), the PROTOCOL.tun.md §8 vectors, and TSO/GRO
packets built as tests/tun/test_tun_offload.cpp builds them. Binary relay/persist seeds come from
fuzz/make_seeds.cpp. Run from the source root: python3 fuzz/make_seeds.py"""
import base64
import pathlib
import random
import re
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def http_heads():
    auth = base64.b64encode(b"admin:s3cret").decode()
    write("http_head", "get", "GET /index.html?x=1 HTTP/1.1\r\nHost: app.example.com\r\nUser-Agent: t\r\n\r\n")
    write("http_head", "basic_auth", f"GET / HTTP/1.1\r\nHost: dash\r\nAuthorization: Basic {auth}\r\n\r\n")
    write("http_head", "http10", "HEAD / HTTP/1.0\r\n\r\n")
    write("http_head", "post_body", "POST /x HTTP/1.1\r\nHost: a.b\r\nContent-Length: 3\r\n\r\nabc")
    write("http_head", "lf_only", "GET / HTTP/1.1\nHost: a\n\n")
    write("http_head", "two_hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    write("http_head", "folded", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  2\r\n\r\n")


def client_hellos():
    """ClientHellos as Python's OpenSSL sends them (the golden bytes of tests/relay/test_relay_sni.cpp),
    with and without SNI, and one split into small records."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    for name, host in (("sni", "site1.example.test"), ("no_sni", None)):
        out = ssl.MemoryBIO()
        conn = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname=host)
        try:
            conn.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = out.read()
        write("sni", name, hello)
    msg, frag = hello[5:], b""
    for at in range(0, len(msg), 100):
        part = msg[at:at + 100]
        frag += bytes([22, 3, 1]) + struct.pack(">H", len(part)) + part
    write("sni", "fragmented", frag)
    write("sni", "http", "GET / HTTP/1.1\r\nHost: a\r\n\r\n")


def socks5():
    greet = bytes([5, 1, 0])
    # The first byte of each seed is the piece size the target feeds at a time.
    write("socks5", "ipv4", bytes([3]) + greet + bytes([5, 1, 0, 1, 127, 0, 0, 1, 0, 80]) + b"GET")
    write("socks5", "domain", bytes([0]) + greet + bytes([5, 1, 0, 3, 11]) + b"example.com" + bytes([1, 187]))
    write("socks5", "ipv6", bytes([16]) + greet + bytes([5, 1, 0, 4]) + bytes(15) + b"\x01" + bytes([0, 22]))
    write("socks5", "bind", bytes([1]) + bytes([5, 2, 2, 0]) + bytes([5, 2, 0, 1, 10, 0, 0, 1, 0, 1]))


LOADERS = {"tn-route": 1, "tn-vnet": 2, "tn-forward": 3, "tn-keysetup": 6}


def configs():
    for f in sorted((ROOT / "examples").glob("*/*.toml")):
        tool = f.parent.name
        if tool == "tn-tun":
            which = 5 if "client" in f.name else 4
        elif tool in LOADERS:
            which = LOADERS[tool]
        else:
            continue
        write("config", f"{tool}-{f.stem}", bytes([which]) + f.read_bytes())
    write("config", "document", bytes([0]) + b'a = "x"\nb = 3\n[[t]]\nx = true\ny = "z"\n')
    # The importers' inputs: the vnet-v2 and frp examples the import tests use (7/8: tn-vnet import of
    # INI/TOML, 9/10: tn-route import of INI/TOML).
    for f in sorted((ROOT / "tests" / "relay" / "import_fixtures").iterdir()):
        toml = f.suffix == ".toml"
        which = (10 if toml else 9) if f.name.startswith(("frps", "vnet-v2-route")) else (8 if toml else 7)
        write("config", f"import-{f.name}", bytes([which]) + f.read_bytes())


def tun_vectors():
    doc = (ROOT / "doc" / "PROTOCOL.tun.md").read_text()
    # Each vector is a label line followed by a fenced hex block.
    for label, hexblock in re.findall(r"^(.+?):\n```\n([0-9a-f\n]+)```", doc, re.M):
        data = bytes.fromhex(hexblock.replace("\n", ""))
        name = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:40]
        if len(data) != 32:  # datagrams, not keys
            write("tun_wire", "vector_" + name, data)


def csum(b, s=0):
    if len(b) % 2:
        b += b"\0"
    for i in range(0, len(b), 2):
        s += (b[i] << 8) | b[i + 1]
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def tcp_packet(payload, seq, flags=0x10):
    """A TCP/IPv4 packet with the timestamp option; TCP checksum holds the pseudo-header sum, as the
    kernel leaves it for a partial checksum (the unit test's tcp_packet)."""
    total = 52 + payload
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0x1234, 0x4000, 64, 6, 0,
                               bytes([10, 99, 0, 2]), bytes([10, 99, 0, 1])))
    ip[10:12] = struct.pack("!H", ~csum(bytes(ip)) & 0xFFFF)
    tcp = bytearray(struct.pack("!HHIIBBHHH", 0xA001, 0x1451, seq, 0x11223344, 0x80, flags, 0x01F5, 0, 0))
    tcp += bytes([1, 1, 8, 10]) + bytes(range(44, 52))
    body = bytes((3 + i * 7) & 0xFF for i in range(payload))
    pseudo = csum(bytes(ip[12:20])) + 6 + (total - 20)
    tcp[16:18] = struct.pack("!H", csum(b"", pseudo))
    return bytes(ip) + bytes(tcp) + body


def offload():
    # Mode byte 0: a vnet header + super-packet to segment (TSO, mss 1000; USO).
    tso = struct.pack("=BBHHHH", 1, 1, 52, 1000, 20, 16)
    write("tun_offload", "tso", bytes([0]) + tso + tcp_packet(2500, 1000))
    write("tun_offload", "plain_csum", bytes([0]) + struct.pack("=BBHHHH", 1, 0, 0, 0, 20, 16) + tcp_packet(100, 7))
    # Mode byte 1|2|4: consecutive segments to coalesce, each behind a 2-byte length.
    segs = b""
    for k in range(4):
        p = tcp_packet(500, 1000 + 500 * k)
        segs += struct.pack("!H", len(p)) + p
    write("tun_offload", "gro_run", bytes([7]) + segs)


def cores():
    rnd = random.Random(16)
    for i in range(6):
        write("tun_cores", f"script{i}", bytes(rnd.randrange(256) for _ in range(64 + 200 * i)))


def udp_frames():
    """UDP link streams (PROTOCOL.relay.md §11): byte 0 picks the feed size, then u16 length + payload
    frames: a DNS-sized pair, an empty datagram, the largest one, and one announcing too much."""
    import struct as st

    def frames(*ds):
        return b"".join(st.pack(">H", len(d)) + d for d in ds)
    write("udp_frames", "dns_pair", b"\x06" + frames(bytes(range(29)), bytes(range(45))))
    write("udp_frames", "empty", b"\x00" + frames(b"", b"x", b""))
    write("udp_frames", "largest", b"\xff" + frames(b"\xab" * 65507))
    write("udp_frames", "oversized", b"\x01" + frames(b"ok") + b"\xff\xe4" + b"z" * 10)
    write("udp_frames", "cut", b"\x02" + frames(b"abc")[:-1])


def relay_e2e():
    """End-to-end handshake messages (PROTOCOL.relay.md §12): the two vector messages (the first one
    passes the fuzz target's serving side), a zero key, another version, one cut short, nothing."""
    e_i = bytes.fromhex("8f40c5adb68f25624ae5b214ea767a6ec94d829d3d7b5e1ad1ba6f3e2138285f")
    mac_i = bytes.fromhex("2b9ce8ee2f9e67c7518137f4f8f6bfabef31fddf22791d5a3e93ab81609eb78a")
    e_r = bytes.fromhex("358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254")
    mac_r = bytes.fromhex("54da8b37b0891014a2cad900d391dce1849088a6d4baa9a2954f8f86c2c18991")
    write("relay_e2e", "init_vector", b"\x01" + e_i + mac_i)
    write("relay_e2e", "reply_vector", b"\x01" + e_r + mac_r)
    write("relay_e2e", "zero_key", b"\x01" + bytes(32) + mac_i)
    write("relay_e2e", "version2", b"\x02" + e_i + mac_i)
    write("relay_e2e", "short", b"\x01" + e_i)
    write("relay_e2e", "empty", b"")


def sftp_replies():
    """SFTP v3 reply bodies (after the length) as OpenSSH's sftp-server sends them: DATA, HANDLE,
    STATUS with and without its message, and ATTRS with every field tn-exec reads."""
    def u32(*vs):
        return b"".join(struct.pack(">I", v) for v in vs)

    def head(t, i=0x80000001):
        return bytes([t]) + u32(i)
    write("sftp_reply", "data", head(103) + u32(5) + b"hello")
    write("sftp_reply", "handle", head(102) + u32(4) + b"\0\0\0\1")
    write("sftp_reply", "status", head(101) + u32(2, 12) + b"No such file" + u32(0))
    write("sftp_reply", "status_bare", head(101) + u32(1))
    write("sftp_reply", "attrs", head(105) + u32(0xF, 0, 1 << 20, 1000, 1000, 0o100644, 1700000000, 1700000001))
    write("sftp_reply", "attrs_dir", head(105) + u32(4, 0o40755))


if __name__ == "__main__":
    http_heads()
    client_hellos()
    socks5()
    relay_e2e()
    configs()
    tun_vectors()
    offload()
    cores()
    udp_frames()
    sftp_replies()
