"""A second implementation of the tn-tun handshake, transport and cookie messages, written from
doc/PROTOCOL.tun.md alone (no look at lib/tun), with Debian's python3-cryptography for X25519 and
ChaCha20-Poly1305 and hashlib for BLAKE2b. XChaCha20-Poly1305 is built from HChaCha20 (written out
below, draft-irtf-cfrg-xchacha §2.2) and ChaCha20-Poly1305, since the library has no XChaCha."""
import hashlib
import struct

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

CONSTRUCTION = b"Noise_IK_25519_ChaChaPoly_BLAKE2b"
IDENTIFIER = b"tn-tun v1"
LABEL_MAC1 = b"mac1----"
LABEL_COOKIE = b"cookie--"


# --- §2 primitives -------------------------------------------------------------------------------

def HASH(*parts):
    return hashlib.blake2b(b"".join(parts), digest_size=32).digest()


def PRF(k, x):
    return hashlib.blake2b(x, key=k, digest_size=32).digest()


def MAC(k, x):
    return hashlib.blake2b(x, key=k, digest_size=16).digest()


MAC16 = MAC  # the key is the 16-byte cookie; hashlib takes any key length up to 64


def KDF1(ck, inp):
    t0 = PRF(ck, inp)
    return PRF(t0, b"\x01")


def KDF2(ck, inp):
    t0 = PRF(ck, inp)
    t1 = PRF(t0, b"\x01")
    t2 = PRF(t0, t1 + b"\x02")
    return t1, t2


def public(priv):
    return X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def DH(priv, pub):
    out = X25519PrivateKey.from_private_bytes(priv).exchange(X25519PublicKey.from_public_bytes(pub))
    if out == bytes(32):
        raise ValueError("low-order point")
    return out


def AEAD(k, n, pt, ad):
    return ChaCha20Poly1305(k).encrypt(bytes(4) + struct.pack("<Q", n), pt, ad)


def AEAD_open(k, n, ct, ad):
    return ChaCha20Poly1305(k).decrypt(bytes(4) + struct.pack("<Q", n), ct, ad)


def AEAD_AES(k, n, pt, ad):
    return AESGCM(k).encrypt(bytes(4) + struct.pack("<Q", n), pt, ad)


def AEAD_AES_open(k, n, ct, ad):
    return AESGCM(k).decrypt(bytes(4) + struct.pack("<Q", n), ct, ad)


def _rotl(v, c):
    return ((v << c) & 0xffffffff) | (v >> (32 - c))


def _quarter(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = _rotl(s[b] ^ s[c], 7)


def hchacha20(key, nonce16):
    s = list(struct.unpack("<4I", b"expand 32-byte k") + struct.unpack("<8I", key) + struct.unpack("<4I", nonce16))
    for _ in range(10):
        _quarter(s, 0, 4, 8, 12); _quarter(s, 1, 5, 9, 13); _quarter(s, 2, 6, 10, 14); _quarter(s, 3, 7, 11, 15)
        _quarter(s, 0, 5, 10, 15); _quarter(s, 1, 6, 11, 12); _quarter(s, 2, 7, 8, 13); _quarter(s, 3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def XAEAD(k, n24, pt, ad):
    return ChaCha20Poly1305(hchacha20(k, n24[:16])).encrypt(bytes(4) + n24[16:], pt, ad)


def XAEAD_open(k, n24, ct, ad):
    return ChaCha20Poly1305(hchacha20(k, n24[:16])).decrypt(bytes(4) + n24[16:], ct, ad)


# --- §4 handshake --------------------------------------------------------------------------------

def timestamp(seconds, nanos, offer_aes=False):
    """offer_aes: revision 5's offer, the top bit of the nanoseconds field."""
    return struct.pack(">QI", seconds, nanos | (0x80000000 if offer_aes else 0))


def offers_aes(ts):
    return bool(ts[8] & 0x80)


def initial(s_r_pub):
    ck = HASH(CONSTRUCTION)
    h = HASH(ck, IDENTIFIER)
    return ck, HASH(h, s_r_pub)


def create_initiation(s_i, s_r_pub, e_i, sender, ts):
    """Returns (message, state) where state carries what the response needs."""
    ck, h = initial(s_r_pub)
    e_pub = public(e_i)
    ck = KDF1(ck, e_pub)
    h = HASH(h, e_pub)
    ck, k = KDF2(ck, DH(e_i, s_r_pub))
    enc_static = AEAD(k, 0, public(s_i), h)
    h = HASH(h, enc_static)
    ck, k = KDF2(ck, DH(s_i, s_r_pub))
    enc_ts = AEAD(k, 0, ts, h)
    h = HASH(h, enc_ts)
    msg = bytes([1, 0, 0, 0]) + struct.pack(">I", sender) + e_pub + enc_static + enc_ts
    msg += MAC(HASH(LABEL_MAC1, s_r_pub), msg)
    assert len(msg) == 132
    return msg, dict(ck=ck, h=h, e_i=e_i, s_i=s_i, sender=sender)


def consume_initiation(s_r, msg):
    """The responder's side: checks mac1, decrypts; returns (initiator static, timestamp, state)."""
    if len(msg) not in (132, 148) or msg[0] != 1 or msg[1:4] != bytes(3):
        raise ValueError("not an initiation")
    s_r_pub = public(s_r)
    if MAC(HASH(LABEL_MAC1, s_r_pub), msg[:116]) != msg[116:132]:
        raise ValueError("bad mac1")
    ck, h = initial(s_r_pub)
    e_i_pub = msg[8:40]
    ck = KDF1(ck, e_i_pub)
    h = HASH(h, e_i_pub)
    ck, k = KDF2(ck, DH(s_r, e_i_pub))
    s_i_pub = AEAD_open(k, 0, msg[40:88], h)
    h = HASH(h, msg[40:88])
    ck, k = KDF2(ck, DH(s_r, s_i_pub))
    ts = AEAD_open(k, 0, msg[88:116], h)
    h = HASH(h, msg[88:116])
    return s_i_pub, ts, dict(ck=ck, h=h, e_i_pub=e_i_pub, s_i_pub=s_i_pub, sender=struct.unpack(">I", msg[4:8])[0])


def create_response(state, e_r, sender, psk=bytes(32), suite=0):
    """Returns (message, (responder send key, responder receive key)). `psk`: the peer's pre-shared key
    (32 zero bytes when it has none, §4). `suite`: revision 5's choice (1 only for an offering initiation)."""
    ck, h = state["ck"], state["h"]
    e_pub = public(e_r)
    ck = KDF1(ck, e_pub)
    h = HASH(h, e_pub)
    if suite != 0:
        h = HASH(h, bytes([suite]))
    ck = KDF1(ck, DH(e_r, state["e_i_pub"]))
    ck = KDF1(ck, DH(e_r, state["s_i_pub"]))
    ck, k = KDF2(ck, psk)
    enc_empty = AEAD(k, 0, b"", h)
    msg = bytes([2, suite, 0, 0]) + struct.pack(">II", sender, state["sender"]) + e_pub + enc_empty
    msg += MAC(HASH(LABEL_MAC1, state["s_i_pub"]), msg)
    assert len(msg) == 76
    t_ir, t_ri = KDF2(ck, b"")
    return msg, (t_ri, t_ir)


def consume_response(state, msg, psk=bytes(32), offered_aes=False):
    """The initiator's side; returns (send key, receive key, the responder's index)."""
    return consume_response_suite(state, msg, psk, offered_aes)[:3]


def consume_response_suite(state, msg, psk=bytes(32), offered_aes=False):
    """As consume_response, plus the suite the response names (revision 5)."""
    if len(msg) != 76 or msg[0] != 2 or msg[2:4] != bytes(2) or msg[1] not in ((0, 1) if offered_aes else (0,)):
        raise ValueError("not a response")
    if MAC(HASH(LABEL_MAC1, public(state["s_i"])), msg[:60]) != msg[60:76]:
        raise ValueError("bad mac1")
    if struct.unpack(">I", msg[8:12])[0] != state["sender"]:
        raise ValueError("not for our initiation")
    ck, h = state["ck"], state["h"]
    e_r_pub = msg[12:44]
    ck = KDF1(ck, e_r_pub)
    h = HASH(h, e_r_pub)
    if msg[1] != 0:
        h = HASH(h, msg[1:2])
    ck = KDF1(ck, DH(state["e_i"], e_r_pub))
    ck = KDF1(ck, DH(state["s_i"], e_r_pub))
    ck, k = KDF2(ck, psk)
    AEAD_open(k, 0, msg[44:60], h)
    t_ir, t_ri = KDF2(ck, b"")
    return t_ir, t_ri, struct.unpack(">I", msg[4:8])[0], msg[1]


# --- §3 transport, §6 cookies, §5 push -----------------------------------------------------------

def seal(msg_type, key, receiver, counter, payload, suite=0):
    header = bytes([msg_type, 0, 0, 0]) + struct.pack(">IQ", receiver, counter)
    return header + (AEAD_AES if suite == 1 else AEAD)(key, counter, payload, header)


def open_transport(key, msg, suite=0):
    header = msg[:16]
    return (AEAD_AES_open if suite == 1 else AEAD_open)(key, struct.unpack(">Q", header[8:16])[0], msg[16:], header)


def cookie_source_ipv4(ip, port):
    return bytes(int(x) for x in ip.split(".")) + struct.pack(">H", port)


def make_cookie(secret, source):
    return MAC(secret, source)


def cookie_reply(s_r_pub, cookie, initiation, nonce):
    k = HASH(LABEL_COOKIE, s_r_pub)
    return bytes([3, 0, 0, 0]) + initiation[4:8] + nonce + XAEAD(k, nonce, cookie, initiation[116:132])


def open_cookie_reply(s_r_pub, reply, sent_mac1):
    return XAEAD_open(HASH(LABEL_COOKIE, s_r_pub), reply[8:32], reply[32:64], sent_mac1)


def make_mac2(cookie, initiation):
    return MAC16(cookie, initiation[:132])


def encode_push(address, prefix, mtu, dns, routes, v6=None):
    """v6: None (version 1), or (prefix6, address6, dns6, routes6) for version 2."""
    out = bytes([1 if v6 is None else 2, prefix]) + struct.pack(">H", mtu) + address + bytes([len(dns)]) + b"".join(dns)
    out += bytes([len(routes)]) + b"".join(net + bytes([p]) for net, p in routes)
    if v6 is not None:
        prefix6, address6, dns6, routes6 = v6
        out += bytes([prefix6]) + address6 + bytes([len(dns6)]) + b"".join(dns6)
        out += bytes([len(routes6)]) + b"".join(net + bytes([p]) for net, p in routes6)
    return out


def decode_push(b):
    """(address, prefix, mtu, dns, routes) for version 1, plus (prefix6, address6, dns6, routes6) for version 2;
    ValueError for anything §5 drops."""
    try:
        return _decode_push(b)
    except IndexError:
        raise ValueError("bad push") from None


def _decode_push(b):
    if len(b) < 10 or b[0] not in (1, 2):
        raise ValueError("bad push")
    prefix, mtu, address = b[1], struct.unpack(">H", b[2:4])[0], b[4:8]
    n_dns = b[8]
    dns = [b[9 + 4 * i:13 + 4 * i] for i in range(n_dns)]
    off = 9 + 4 * n_dns
    if off >= len(b):
        raise ValueError("bad push")
    n_routes = b[off]
    routes = [(b[off + 1 + 5 * i:off + 5 + 5 * i], b[off + 5 + 5 * i]) for i in range(n_routes)]
    end = off + 1 + 5 * n_routes
    if not 1 <= prefix <= 32 or not 576 <= mtu <= 9000 or n_dns > 8 or n_routes > 64 or len(b) < end:
        raise ValueError("bad push")
    if any(p > 32 for _, p in routes):
        raise ValueError("bad push")
    if b[0] == 1:
        if len(b) != end:
            raise ValueError("bad push")
        return address, prefix, mtu, dns, routes
    if len(b) < end + 18:
        raise ValueError("bad push")
    prefix6, address6, n_dns6 = b[end], b[end + 1:end + 17], b[end + 17]
    dns6 = [b[end + 18 + 16 * i:end + 34 + 16 * i] for i in range(n_dns6)]
    off6 = end + 18 + 16 * n_dns6
    if off6 >= len(b):
        raise ValueError("bad push")
    n_routes6 = b[off6]
    routes6 = [(b[off6 + 1 + 17 * i:off6 + 17 + 17 * i], b[off6 + 17 + 17 * i]) for i in range(n_routes6)]
    if (len(b) != off6 + 1 + 17 * n_routes6 or not 1 <= prefix6 <= 128 or n_dns6 > 8 or n_routes6 > 64
            or any(p > 128 for _, p in routes6)):
        raise ValueError("bad push")
    return address, prefix, mtu, dns, routes, (prefix6, address6, dns6, routes6)
