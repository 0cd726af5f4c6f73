"""A recording TCP relay for the sealed-link tests: it sits between the vnets and the route, keeps
every byte of every connection in both directions, and can cut or tamper with a chosen connection
(what an on-path attacker can do)."""
import contextlib
import socket
import threading


class Conn:
    def __init__(self, index, client, server):
        self.index = index
        self.client = client  # the vnet's side
        self.server = server  # the route's side
        self.up = bytearray()  # vnet -> route
        self.down = bytearray()  # route -> vnet
        self.lock = threading.Lock()
        self.cut_down = False  # stop relaying route -> vnet (after a FIN sent to the vnet)
        self.flip_down = False  # flip one bit of the next route -> vnet chunk
        self.bad_type_up = False  # give the next vnet -> route chunk (a record header) an unknown type

    def is_tls(self):
        with self.lock:
            return bool(self.up) and self.up[0] == 0x16

    def is_control(self):
        """A vnet's control connection: TLS (tls = true), or its first frame after the 8-byte hello is
        AUTH (type 0x0002); a link's is LINK_PARK, LINK_STANDBY or LINK_OPEN."""
        with self.lock:
            return bool(self.up) and (self.up[0] == 0x16 or self.up[8:10] == b"\x00\x02")

    def first_frame(self):
        """The type of the vnet's first frame after its 8-byte hello (a link: LINK_PARK 0x65 or LINK_OPEN
        0x60 on the using side, LINK_STANDBY 0x66 or LINK_ACCEPT 0x61 on the serving side)."""
        with self.lock:
            return int.from_bytes(self.up[8:10], "big") if len(self.up) >= 10 else None

    def sizes(self):
        with self.lock:
            return len(self.up), len(self.down)


class Recorder:
    def __init__(self, target_port):
        self.target = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        self.stopped = False
        # Change the cipher byte of every LINK_OPEN that is a link's first frame (1 <-> 2), as a
        # downgrading attacker would.
        self.flip_open_cipher = False
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            for x in (c, s):
                x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                conn = Conn(len(self.conns), c, s)
                self.conns.append(conn)
                pumps = [threading.Thread(target=self._pump, args=(conn, up), daemon=True) for up in (True, False)]
                self.threads += pumps
            for t in pumps:
                t.start()

    def _pump(self, conn, up):
        src, dst = (conn.client, conn.server) if up else (conn.server, conn.client)
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                    return
                with conn.lock:
                    (conn.up if up else conn.down).extend(b)
                    if not up and conn.cut_down:
                        continue
                    if up and self.flip_open_cipher:
                        b = self._flip_open_cipher(conn, b)
                    if up and conn.bad_type_up:
                        conn.bad_type_up = False  # the next chunk starts with a record header: an unknown type
                        b = b"\x09" + b[1:]
                    if not up and conn.flip_down:
                        conn.flip_down = False
                        b = bytearray(b)
                        b[len(b) // 2] ^= 0x01
                        b = bytes(b)
                dst.sendall(b)
        except OSError:
            for x in (conn.client, conn.server):
                with contextlib.suppress(OSError):
                    x.shutdown(socket.SHUT_RDWR)

    # A link's first frame follows the 8-byte hello: header (8), then LINK_OPEN's vnet_id (4), id (2)
    # and mac (32), so its cipher byte is byte 54 of the connection.
    CIPHER_AT = 8 + 8 + 4 + 2 + 32

    def _flip_open_cipher(self, conn, b):
        start = len(conn.up) - len(b)  # conn.up already holds b
        if start <= self.CIPHER_AT < len(conn.up) and conn.up[8:10] == b"\x00\x60":
            b = bytearray(b)
            b[self.CIPHER_AT - start] ^= 0x03
            b = bytes(b)
        return b

    def cut(self, conn):
        """Sends the vnet a FIN on this connection, as if the route had closed it, and drops whatever
        the route sends after it (the vnet never sees an EOF record)."""
        with conn.lock:
            conn.cut_down = True
        # Cutting one link of a pair can tear the other down before we get to it (the vnet resets, the
        # route closes the pair): then it has already ended without an EOF record, which is the point.
        with contextlib.suppress(OSError):
            conn.client.shutdown(socket.SHUT_WR)

    def snapshot(self):
        with self.lock:
            return {c.index: c.sizes() for c in self.conns}

    def grown_since(self, snap, links_only=True):
        with self.lock:
            conns = list(self.conns)
        return [c for c in conns if c.sizes() != snap.get(c.index, (0, 0)) and not (links_only and c.is_control())]

    def everything(self):
        with self.lock:
            return [(c.index, bytes(c.up), bytes(c.down)) for c in self.conns]

    def close(self):
        """Wakes every thread with shutdown() and waits for it before any socket is closed: a thread
        between two calls on a closed socket's descriptor number would use whatever socket the next
        test opens with that number (harness.EchoHashServer.close says the same)."""
        self.stopped = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.threads[0].join(30)  # no more pumps start after the accept thread ended
        with self.lock:
            socks = [self.sock] + [x for c in self.conns for x in (c.client, c.server)]
        for x in socks[1:]:
            with contextlib.suppress(OSError):
                x.shutdown(socket.SHUT_RDWR)
        for t in self.threads:
            t.join(30)
        assert not any(t.is_alive() for t in self.threads), "a recorder thread did not stop"
        for x in socks:
            x.close()
