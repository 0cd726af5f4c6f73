#!/usr/bin/python3
"""bench/tun/wg_peers.py: N simulated WireGuard clients in one process, the anchor of scale.py.

Each peer has its own X25519 key and its own UDP socket (so its own source port, spread over
--addresses source addresses), does WireGuard's Noise_IKpsk2 handshake as the initiator (cookie
replies answered with mac2), and sends ICMP echo requests in transport messages to the responder's
tunnel address; the responder host's kernel answers them through wireguard-go. Phases and output
are those of tn-tun-peers (bench/tun/peers.cpp): one JSON line per phase, connect, steady, flood.

  wg_peers.py keys N                                   N key pairs, "private public" per line (hex)
  wg_peers.py run --server IP:PORT --server-key HEX --keys FILE --bind IP [--addresses A]
                  --subnet CIDR [--size B] [--rate R] [--steady-seconds S] [--window W]
                  [--flood-seconds S] [--connect-timeout S] [--cookie-retry S]
Peer i's tunnel address is the subnet's address 2 + i; the responder's is address 1.
Crypto: python3-cryptography (X25519, ChaCha20-Poly1305), hashlib's BLAKE2s, libsodium's
XChaCha20-Poly1305 for cookie replies (ctypes)."""
import argparse
import ctypes
import hashlib
import hmac
import ipaddress
import json
import os
import selectors
import socket
import statistics
import struct
import sys
import time

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization

CONSTRUCTION = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
IDENTIFIER = b"WireGuard v1 zx2c4 Jason@zx2c4.com"
REKEY_TIMEOUT = 5.0
ZERO12 = bytes(12)
LOST_AFTER = 0.3  # flood: an echo unanswered this long is lost (tn-tun-peers' lost_after)
RAW = serialization.Encoding.Raw


def blake(*parts):
    h = hashlib.blake2s()
    for p in parts:
        h.update(p)
    return h.digest()


def mac(key, data):
    return hashlib.blake2s(data, digest_size=16, key=key).digest()


def hm(key, data):
    return hmac.new(key, data, hashlib.blake2s).digest()


def kdf(key, data, n):
    t0 = hm(key, data)
    out, prev = [], b""
    for i in range(1, n + 1):
        prev = hm(t0, prev + bytes([i]))
        out.append(prev)
    return out


def pub_of(priv):
    return priv.public_key().public_bytes(RAW, serialization.PublicFormat.Raw)


def tai64n():
    t = time.time_ns()
    return struct.pack(">QI", (1 << 62) + 10 + t // 1_000_000_000, t % 1_000_000_000)


class Sodium:
    """XChaCha20-Poly1305 from libsodium: only a cookie reply needs it, which python3-cryptography lacks."""

    def __init__(self):
        self.lib = ctypes.CDLL("libsodium.so.23")
        if self.lib.sodium_init() < 0:
            raise RuntimeError("sodium_init failed")

    def xopen(self, key, nonce, ct, ad):
        out = ctypes.create_string_buffer(len(ct))
        n = ctypes.c_ulonglong(0)
        rc = self.lib.crypto_aead_xchacha20poly1305_ietf_decrypt(out, ctypes.byref(n), None, ct,
                                                                 ctypes.c_ulonglong(len(ct)), ad,
                                                                 ctypes.c_ulonglong(len(ad)), nonce, key)
        return out.raw[:n.value] if rc == 0 else None


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo_packet(size, src, dst, ident, seq):
    """An IPv4 ICMP echo request of `size` bytes, its send time (ns) in the payload."""
    payload = struct.pack("<Q", time.monotonic_ns()) + bytes(size - 36)
    icmp = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + payload
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, size, 0, 0, 64, 1, 0, src, dst)
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return hdr + icmp


class Peer:
    """One WireGuard initiator: its key, its socket, its handshake state and its session keys."""

    def __init__(self, i, priv_hex, server_pub, server, bind, inner, responder):
        self.i, self.ident = i, (i + 1) & 0xFFFF
        self.priv = X25519PrivateKey.from_private_bytes(bytes.fromhex(priv_hex))
        self.pub = pub_of(self.priv)
        self.spub = server_pub
        self.ss = self.priv.exchange(X25519PublicKey.from_public_bytes(server_pub))  # DH(S_i, S_r): fixed
        self.index = struct.unpack("<I", os.urandom(4))[0]
        self.inner, self.responder = inner, responder
        self.window = 0  # the flood phase's share of the window
        self.in_flight = {}  # the flood's echoes in flight, oldest first: seq -> time sent
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # As tn-tun-peers: room for a whole flood window's replies (root: SO_RCVBUFFORCE, past rmem_max).
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, 1 << 20)  # SO_RCVBUFFORCE
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((bind, 0))
        self.sock.connect(server)
        self.sock.setblocking(False)
        self.cookie, self.cookie_at, self.last_mac1 = None, 0.0, b""
        self.send_aead = self.recv_aead = None
        self.remote, self.counter, self.next_retry = 0, 0, 0.0
        self.outstanding, self.last_reply, self.seq = 0, 0.0, 0

    def initiation(self, now, keys):
        """A handshake initiation (message type 1), sent; keeps the state its response needs."""
        self.e = X25519PrivateKey.generate()
        epub = pub_of(self.e)
        c = kdf(keys.c0, epub, 1)[0]
        h = blake(keys.h0, epub)
        c, k = kdf(c, self.e.exchange(keys.spub_key), 2)
        static = ChaCha20Poly1305(k).encrypt(ZERO12, self.pub, h)
        h = blake(h, static)
        c, k = kdf(c, self.ss, 2)
        ts = ChaCha20Poly1305(k).encrypt(ZERO12, tai64n(), h)
        self.h, self.c = blake(h, ts), c
        msg = struct.pack("<II", 1, self.index) + epub + static + ts
        self.last_mac1 = mac(keys.mac1_key, msg)
        msg += self.last_mac1
        # A cookie is good for 120 s; the responder asks for mac2 only while it is under load.
        msg += mac(self.cookie, msg) if self.cookie and now - self.cookie_at < 120 else bytes(16)
        self.sock.send(msg)
        self.next_retry = now + REKEY_TIMEOUT

    def response(self, d):
        """A handshake response (type 2): derives the session keys; False when it does not verify."""
        if len(d) != 92 or struct.unpack_from("<I", d, 8)[0] != self.index or self.send_aead:
            return False
        er = d[12:44]
        epub = X25519PublicKey.from_public_bytes(er)
        c = kdf(self.c, er, 1)[0]
        h = blake(self.h, er)
        c = kdf(c, self.e.exchange(epub), 1)[0]
        c = kdf(c, self.priv.exchange(epub), 1)[0]
        c, t, k = kdf(c, bytes(32), 3)  # no preshared key
        h = blake(h, t)
        try:
            ChaCha20Poly1305(k).decrypt(ZERO12, d[44:60], h)
        except Exception:
            return False
        send, recv = kdf(c, b"", 2)
        self.send_aead, self.recv_aead = ChaCha20Poly1305(send), ChaCha20Poly1305(recv)
        self.remote = struct.unpack_from("<I", d, 4)[0]
        self.transport(b"")  # a keepalive confirms the session to the responder at once
        return True

    def transport(self, pkt):
        pad = (-len(pkt)) % 16
        nonce = bytes(4) + struct.pack("<Q", self.counter)
        msg = struct.pack("<IIQ", 4, self.remote, self.counter) + self.send_aead.encrypt(nonce, pkt + bytes(pad), None)
        self.counter += 1
        try:
            self.sock.send(msg)
            return True
        except (BlockingIOError, ConnectionRefusedError):
            return False

    def echo(self, size):
        self.seq = (self.seq + 1) & 0xFFFF
        return self.transport(echo_packet(size, self.inner, self.responder, self.ident, self.seq))

    def open(self, d):
        """A transport message's plaintext (type 4), or None."""
        if len(d) < 32 or not self.recv_aead:
            return None
        try:
            return self.recv_aead.decrypt(bytes(4) + d[8:16], d[16:], None)
        except Exception:
            return None


class Keys:
    """What every initiation to this responder shares."""

    def __init__(self, spub):
        self.spub_key = X25519PublicKey.from_public_bytes(spub)
        self.c0 = blake(CONSTRUCTION)
        self.h0 = blake(blake(self.c0, IDENTIFIER), spub)
        self.mac1_key = blake(b"mac1----", spub)
        self.cookie_key = blake(b"cookie--", spub)


class Swarm:
    """The event loop of all peers: one epoll set, every socket non-blocking."""

    def __init__(self, a):
        host, port = a.server.rsplit(":", 1)
        spub = bytes.fromhex(a.server_key)
        self.keys, self.size, self.sodium, self.cookie_retry = Keys(spub), a.size, None, a.cookie_retry
        net = ipaddress.ip_network(a.subnet)
        responder = (net.network_address + 1).packed
        bind0 = ipaddress.ip_address(a.bind)
        with open(a.keys) as f:
            privs = [line.split()[0] for line in f if line.strip()]
        self.peers = [Peer(i, p, spub, (host, int(port)), str(bind0 + i % a.addresses),
                           (net.network_address + 2 + i).packed, responder) for i, p in enumerate(privs)]
        self.sel = selectors.DefaultSelector()
        for p in self.peers:
            self.sel.register(p.sock, selectors.EVENT_READ, p)
        self.initiations = self.cookies = 0
        self.counting, self.rtts, self.replies, self.reply_bytes = False, [], 0, 0
        self.on_reply = None

    def poll(self, timeout):
        for key, _ in self.sel.select(max(0.0, timeout)):
            p = key.data
            for _ in range(64):  # a bounded drain per socket, so one busy peer cannot starve the rest
                try:
                    d = p.sock.recv(2048)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                self.datagram(p, d)

    def datagram(self, p, d):
        kind = d[0] if d else 0
        if kind == 2:
            p.response(d)
        elif kind == 3 and len(d) == 64:
            self.sodium = self.sodium or Sodium()
            cookie = self.sodium.xopen(self.keys.cookie_key, d[8:32], d[32:64], p.last_mac1)
            if cookie:
                self.cookies += 1
                p.cookie, p.cookie_at = cookie, time.monotonic()
                # A WireGuard client keeps the cookie for its next retransmission (REKEY_TIMEOUT after the
                # initiation); --cookie-retry shortens that.
                p.next_retry = min(p.next_retry, time.monotonic() + self.cookie_retry)
        elif kind == 4:
            pkt = p.open(d)
            if not pkt or len(pkt) < 36 or pkt[9] != 1:
                return  # a keepalive, or not ICMP
            ihl = (pkt[0] & 0x0F) * 4
            if pkt[ihl] != 0 or struct.unpack_from("!H", pkt, ihl + 4)[0] != p.ident:
                return
            if p.window and p.in_flight.pop(struct.unpack_from("!H", pkt, ihl + 6)[0], None) is None:
                return  # counted lost already: its slot was reused
            p.outstanding = max(0, p.outstanding - 1)
            p.last_reply = time.monotonic()
            p.replied = True
            if self.counting:
                self.replies += 1
                self.reply_bytes += struct.unpack_from("!H", pkt, 2)[0]
                self.rtts.append((time.monotonic_ns() - struct.unpack_from("<Q", pkt, ihl + 8)[0]) / 1e6)
            if self.on_reply:
                self.on_reply(p)

    def connect(self, timeout):
        t0 = time.monotonic()
        waiting = list(self.peers)
        while waiting and time.monotonic() - t0 < timeout:
            now = time.monotonic()
            for p in waiting:
                if p.next_retry <= now:
                    p.initiation(now, self.keys)
                    self.initiations += 1
            self.poll(min([p.next_retry for p in waiting]) - time.monotonic())
            waiting = [p for p in waiting if not p.send_aead]
        return {"phase": "connect", "peers": len(self.peers), "connected": len(self.peers) - len(waiting),
                "seconds": round(time.monotonic() - t0, 3), "initiations": self.initiations, "cookies": self.cookies}

    def result(self, name, seconds, sent, failed):
        r = sorted(self.rtts)
        q = (lambda f: r[min(len(r) - 1, int(f * len(r)))]) if r else (lambda f: 0.0)
        return {"phase": name, "seconds": round(seconds, 3), "sent": sent, "replies": self.replies,
                "reply_bytes": self.reply_bytes, "lost": max(0, sent - self.replies), "send_failed": failed,
                "peers_replied": sum(1 for p in self.peers if getattr(p, "replied", False)),
                "rtt_p50_ms": round(q(0.5), 3), "rtt_p99_ms": round(q(0.99), 3)}

    def reset(self):
        self.counting, self.rtts, self.replies, self.reply_bytes = True, [], 0, 0
        for p in self.peers:
            p.replied, p.outstanding = False, 0

    def drain(self, until):
        while time.monotonic() < until and any(p.outstanding for p in self.peers):
            self.poll(until - time.monotonic())
        self.counting = False

    def steady(self, rate, seconds):
        """rate echoes per second per peer, spread evenly over the peers and the phase."""
        live = [p for p in self.peers if p.send_aead]
        self.reset()
        total, sent, failed, t0 = rate * len(live), 0, 0, time.monotonic()
        while (now := time.monotonic()) - t0 < seconds:
            due = int((now - t0) * total) - sent
            for _ in range(max(0, due)):
                p = live[sent % len(live)]
                if p.echo(self.size):
                    p.outstanding += 1
                else:
                    failed += 1
                sent += 1
            self.poll((sent + 1) / total - (time.monotonic() - t0))
        self.drain(time.monotonic() + 1.0)
        return self.result("steady", seconds, sent, failed)

    def flood(self, window, seconds):
        """window echoes in flight in total, shared out as tn-tun-peers does (window // N each, the
        remainder one more for the first peers, at least one each); each reply sends the next."""
        live = [p for p in self.peers if p.send_aead]
        n = max(1, len(live))
        for i, p in enumerate(live):
            p.window = max(1, window // n + (i < window % n))
        self.reset()
        counts = {"sent": 0, "failed": 0}
        t0 = time.monotonic()

        def send(p):
            if p.echo(self.size):
                p.outstanding += 1
                p.in_flight[p.seq] = time.monotonic()
            else:
                counts["failed"] += 1
            counts["sent"] += 1

        def refill(p):
            while p.outstanding < p.window and time.monotonic() - t0 < seconds:
                send(p)

        self.on_reply = refill
        for p in live:
            p.in_flight.clear()
            refill(p)
        while (now := time.monotonic()) - t0 < seconds:
            for p in live:  # each echo unanswered for LOST_AFTER is lost on its own (tn-tun-peers' rule)
                freed = False
                while p.in_flight and now - next(iter(p.in_flight.values())) > LOST_AFTER:
                    p.in_flight.pop(next(iter(p.in_flight)))
                    p.outstanding, freed = max(0, p.outstanding - 1), True
                if freed:
                    refill(p)
            self.poll(min(0.1, seconds - (now - t0)))
        elapsed = time.monotonic() - t0
        for p in live:
            p.window = 0
            p.in_flight.clear()
        self.on_reply = None
        self.counting = False
        return self.result("flood", elapsed, counts["sent"], counts["failed"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keys", help="N key pairs, 'private public' per line (hex)")
    k.add_argument("n", type=int)
    r = sub.add_parser("run", help="simulated WireGuard clients against a running wireguard-go")
    r.add_argument("--server", required=True, help="IPv4:PORT")
    r.add_argument("--server-key", required=True, help="the responder's public key (hex)")
    r.add_argument("--keys", required=True, help="file of private keys (hex), one peer each")
    r.add_argument("--bind", required=True, help="first local address; peers bind it and the next ones")
    r.add_argument("--addresses", type=int, default=1)
    r.add_argument("--subnet", required=True, help="the tunnel subnet: responder .1, peer i at 2 + i")
    r.add_argument("--size", type=int, default=1000, help="inner packet bytes (36..1400)")
    r.add_argument("--rate", type=float, default=10)
    r.add_argument("--steady-seconds", type=float, default=5)
    r.add_argument("--window", type=int, default=64)
    r.add_argument("--flood-seconds", type=float, default=5)
    r.add_argument("--connect-timeout", type=float, default=60)
    r.add_argument("--cookie-retry", type=float, default=REKEY_TIMEOUT,
                   help="seconds from a cookie reply to the next initiation (WireGuard: its retransmission)")
    a = ap.parse_args()
    if a.cmd == "keys":
        for _ in range(a.n):
            priv = X25519PrivateKey.generate()
            print(priv.private_bytes(RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption()).hex(),
                  pub_of(priv).hex())
        return 0
    if not 36 <= a.size <= 1400:
        print("wg_peers.py: --size must be 36..1400", file=sys.stderr)
        return 64
    s = Swarm(a)
    c = s.connect(a.connect_timeout)
    print(json.dumps(c), flush=True)
    if c["connected"] == 0:
        return 1
    if a.steady_seconds > 0:
        print(json.dumps(s.steady(a.rate, a.steady_seconds)), flush=True)
    if a.flood_seconds > 0:
        print(json.dumps(s.flood(a.window, a.flood_seconds)), flush=True)
    return 0 if c["connected"] == c["peers"] else 1


if __name__ == "__main__":
    sys.exit(main())
