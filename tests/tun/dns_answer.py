"""A tiny DNS server for tests (standard library only): answers A queries for one name with one
address, NXDOMAIN for anything else. Usage: dns_answer.py BIND_ADDR NAME ADDRESS"""
import socket
import struct
import sys


def qname(msg, off):
    labels = []
    while msg[off]:
        n = msg[off]
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
    return ".".join(labels).lower(), off + 1


def answer(msg, name, address):
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    if qd != 1:
        return None
    got, end = qname(msg, 12)
    qtype, _ = struct.unpack("!HH", msg[end:end + 4])
    question = msg[12:end + 4]
    rd = flags & 0x0100
    if got == name and qtype == 1:
        rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(address)
        return struct.pack("!HHHHHH", qid, 0x8400 | rd, 1, 1, 0, 0) + question + rr
    rcode = 0 if got == name else 3  # NOERROR with no answer for other types of our name, else NXDOMAIN
    return struct.pack("!HHHHHH", qid, 0x8400 | rd | rcode, 1, 0, 0, 0) + question


def main():
    bind, name, address = sys.argv[1], sys.argv[2].lower().rstrip("."), sys.argv[3]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((bind, 53))
    while True:
        msg, peer = s.recvfrom(4096)
        try:
            reply = answer(msg, name, address)
        except (struct.error, IndexError):
            reply = None
        if reply:
            s.sendto(reply, peer)


if __name__ == "__main__":
    main()
