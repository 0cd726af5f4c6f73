"""An independent check of the tn-tun protocol: tun_ref.py, written from doc/PROTOCOL.tun.md alone in
Python, must reproduce every test vector the document gives (§5 push examples, §8). If it cannot, the
document does not describe what tn-tun does, and one of the two is wrong."""
import os
import re
import socket
import sys

import pytest
from cryptography.exceptions import InvalidTag

sys.path.insert(0, os.path.dirname(__file__))
import tun_ref as ref  # noqa: E402

ROOT = os.environ.get("TN_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
DOC = os.path.join(ROOT, "doc", "PROTOCOL.tun.md")


def doc_vectors():
    """{label: bytes} for every fenced hex block of §8, labelled by the paragraph just before it."""
    text = open(DOC, encoding="utf-8").read()
    section = text[text.index("## 8. Test vectors"):]
    out = {}
    for m in re.finditer(r"((?:(?!```)[^\n]+\n)+)```\n([0-9a-f\n]+)```", section):
        label = " ".join(m.group(1).split())
        out[label] = bytes.fromhex(m.group(2).replace("\n", ""))
    return out


def vector(vectors, prefix):
    found = [v for k, v in vectors.items() if k.startswith(prefix)]
    assert len(found) == 1, f"the document has {len(found)} vectors labelled '{prefix}…'"
    return found[0]


def key(start):
    return bytes((start + i) & 0xff for i in range(32))


@pytest.fixture(scope="module")
def v():
    vectors = doc_vectors()
    assert len(vectors) == 17, sorted(vectors)
    return vectors


@pytest.fixture(scope="module")
def run():
    s_i, s_r, e_i, e_r = key(0x01), key(0x40), key(0x80), key(0xc0)
    ts = ref.timestamp(1795000000, 123456789)
    init, i_state = ref.create_initiation(s_i, ref.public(s_r), e_i, 0x01020304, ts)
    s_i_pub, got_ts, r_state = ref.consume_initiation(s_r, init)
    assert s_i_pub == ref.public(s_i) and got_ts == ts
    resp, (r_send, r_recv) = ref.create_response(r_state, e_r, 0x0a0b0c0d)
    i_send, i_recv, r_index = ref.consume_response(i_state, resp)
    assert (i_send, i_recv, r_index) == (r_recv, r_send, 0x0a0b0c0d)
    data = ref.seal(4, i_send, r_index, 0, b"tn-tun")
    assert ref.open_transport(r_recv, data) == b"tn-tun"
    cookie = ref.make_cookie(bytes(range(0x20, 0x40)), ref.cookie_source_ipv4("192.0.2.1", 40001))
    reply = ref.cookie_reply(ref.public(s_r), cookie, init, bytes(range(0x50, 0x68)))
    assert ref.open_cookie_reply(ref.public(s_r), reply, init[116:132]) == cookie
    # The same handshake for a peer with a pre-shared key (§4): only the response and keys change.
    psk = key(0x60)
    psk_resp, (pr_send, pr_recv) = ref.create_response(r_state, e_r, 0x0a0b0c0d, psk)
    p_send, p_recv, _ = ref.consume_response(i_state, psk_resp, psk)
    assert (p_send, p_recv) == (pr_recv, pr_send)
    with pytest.raises(InvalidTag):  # a wrong (or missing) pre-shared key does not authenticate
        ref.consume_response(i_state, psk_resp)
    out = dict(s_i_pub=ref.public(s_i), s_r_pub=ref.public(s_r), init=init, resp=resp, t_ir=i_send, t_ri=i_recv,
               data=data, cookie=cookie, reply=reply, mac2=ref.make_mac2(cookie, init),
               psk_resp=psk_resp, psk_t_ir=p_send, psk_t_ri=p_recv)
    out.update(revision5(s_i, s_r, e_i, e_r, i_send, i_recv))
    return out


def revision5(s_i, s_r, e_i, e_r, t_ir, t_ri):
    """§4's cipher suites: the offering initiation, both possible responses, a data message under AES."""
    ts = ref.timestamp(1795000000, 123456789, offer_aes=True)
    init, i_state = ref.create_initiation(s_i, ref.public(s_r), e_i, 0x01020304, ts)
    _, got_ts, r_state = ref.consume_initiation(s_r, init)
    assert ref.offers_aes(got_ts)
    resp, (r_send, r_recv) = ref.create_response(r_state, e_r, 0x0a0b0c0d, suite=1)
    i_send, i_recv, r_index, suite = ref.consume_response_suite(i_state, resp, offered_aes=True)
    assert (suite, i_send, i_recv) == (1, t_ir, t_ri) and (r_send, r_recv) == (t_ri, t_ir)
    chacha, _ = ref.create_response(r_state, e_r, 0x0a0b0c0d)  # what a revision 4 responder computes
    assert ref.consume_response_suite(i_state, chacha, offered_aes=True)[3] == 0
    for forged in (bytes([2, 0]) + resp[2:], bytes([2, 1]) + chacha[2:]):  # the choice rewritten
        mac1 = ref.MAC(ref.HASH(ref.LABEL_MAC1, ref.public(s_i)), forged[:60])
        with pytest.raises(InvalidTag):
            ref.consume_response_suite(i_state, forged[:60] + mac1, offered_aes=True)
    data = ref.seal(4, i_send, r_index, 0, b"tn-tun", suite=1)
    assert ref.open_transport(r_recv, data, suite=1) == b"tn-tun"
    return dict(aes_init=init, aes_resp=resp, aes_chacha_resp=chacha, aes_data=data)


@pytest.mark.parametrize("label,name", [
    ("S_i.pub", "s_i_pub"), ("S_r.pub", "s_r_pub"), ("initiation (132 bytes)", "init"),
    ("response (76 bytes)", "resp"), ("T_i→r", "t_ir"), ("T_r→i", "t_ri"), ("first data message", "data"),
    ("Cookie for that initiation", "cookie"), ("cookie reply", "reply"), ("mac2 of the initiation", "mac2"),
    ("PSK response", "psk_resp"), ("PSK T_i→r", "psk_t_ir"), ("PSK T_r→i", "psk_t_ri"),
    ("AES offer initiation", "aes_init"), ("AES response", "aes_resp"), ("ChaCha response to the AES offer", "aes_chacha_resp"),
    ("AES first data message", "aes_data"),
])
def test_vector(v, run, label, name):
    assert run[name].hex() == vector(v, label).hex()


def test_cookie_source_bytes_as_documented():
    assert ref.cookie_source_ipv4("192.0.2.1", 40001).hex() == "c00002019c41"


def test_push_example():
    text = open(DOC, encoding="utf-8").read()
    example = bytes.fromhex(re.search(r"routes 10\.88\.0\.0/16 and 0\.0\.0\.0/0\):\s*`([0-9a-f]+)`", text).group(1))
    ip = lambda s: bytes(int(x) for x in s.split("."))
    built = ref.encode_push(ip("10.99.0.7"), 24, 1400, [ip("1.1.1.1"), ip("9.9.9.9")],
                            [(ip("10.88.0.0"), 16), (ip("0.0.0.0"), 0)])
    assert built.hex() == example.hex()
    assert ref.decode_push(example) == (ip("10.99.0.7"), 24, 1400, [ip("1.1.1.1"), ip("9.9.9.9")],
                                        [(ip("10.88.0.0"), 16), (ip("0.0.0.0"), 0)])


def test_push_version_2_example():
    text = open(DOC, encoding="utf-8").read()
    m = re.search(r"routes6 ::/0 and fd00:88::/48\):\s*`([0-9a-f]+)` `([0-9a-f]+)` `([0-9a-f]+)`", text)
    example = bytes.fromhex("".join(m.groups()))
    ip = lambda s: bytes(int(x) for x in s.split("."))
    ip6 = lambda s: socket.inet_pton(socket.AF_INET6, s)
    v6 = (64, ip6("fd00:99::7"), [ip6("fd00:99::1")], [(ip6("::"), 0), (ip6("fd00:88::"), 48)])
    v4 = (ip("10.99.0.7"), 24, 1400, [ip("1.1.1.1"), ip("9.9.9.9")], [(ip("10.88.0.0"), 16), (ip("0.0.0.0"), 0)])
    assert ref.encode_push(*v4, v6=v6).hex() == example.hex()
    assert ref.decode_push(example) == v4 + (v6,)
    for n in range(len(example)):
        with pytest.raises(ValueError):
            ref.decode_push(example[:n])


def test_hchacha20_rfc_vector():
    # draft-irtf-cfrg-xchacha-03 §2.2.1: the one piece not taken from the library.
    k = bytes(range(32))
    n = bytes.fromhex("000000090000004a0000000031415927")
    assert ref.hchacha20(k, n).hex() == "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"
