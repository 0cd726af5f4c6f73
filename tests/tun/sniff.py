"""Captures one tn-tun data datagram (type 4, with a payload) sent to PORT on IFACE and prints it as hex;
with a fourth argument `initiation`, a handshake initiation (type 1) instead.
Run inside the server's namespace by the tests to replay it later."""
import socket
import sys
import time

iface, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
want_initiation = len(sys.argv) > 4 and sys.argv[4] == "initiation"
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind((iface, 0))
s.settimeout(0.5)
print("ready", flush=True)
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        frame = s.recv(65535)
    except socket.timeout:
        continue
    ip = frame[14:]
    if len(ip) < 28 or ip[9] != 17:
        continue
    ihl = (ip[0] & 15) * 4
    udp = ip[ihl:]
    if int.from_bytes(udp[2:4], "big") != port:
        continue
    payload = udp[8:]
    wanted = (payload[0] == 1 and len(payload) in (132, 148)) if want_initiation else \
        (len(payload) > 32 + 20 and payload[0] == 4)  # a data message carrying an IP packet
    if wanted:
        print(payload.hex(), flush=True)
        sys.exit(0)
sys.exit(1)
