"""Test helpers: a framed-JSON client over a non-blocking socket, and a
harness that pumps a chat.Server and those clients in one selectors loop.
Every wait is on a condition with a deadline; nothing sleeps."""

import json
import os
import select
import selectors
import socket
import struct
import sys
import time
import unittest
from collections import deque

# The package lives next to this folder: bindings/python/chat.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import chat  # noqa: E402

# How long any single wait may take before the test fails.
DEADLINE = 10.0


def encode_frame(obj):
    """One frame: the 4-byte big-endian length, then the JSON."""
    payload = json.dumps(obj).encode("utf-8")
    return struct.pack(">I", len(payload)) + payload


class FramedClient:
    """One protocol client: 4-byte big-endian length, then a JSON object."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.frames = deque()
        self.eof = False

    @property
    def addr(self):
        """Our address as the server sees it, "IP:port"."""
        host, port = self.sock.getsockname()[:2]
        return "%s:%d" % (host, port)

    def send(self, obj):
        self.send_raw_frame(json.dumps(obj).encode("utf-8"))

    def send_raw_frame(self, payload):
        self.send_raw(struct.pack(">I", len(payload)) + payload)

    def send_raw(self, data):
        view = memoryview(data)
        end = time.monotonic() + DEADLINE
        while view:
            try:
                view = view[self.sock.send(view) :]
            except BlockingIOError:
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("could not send before the deadline")
                select.select([], [self.sock], [], left)

    def fill(self):
        """Reads what the socket holds now, without blocking."""
        while not self.eof:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                break
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof = True
                break
            self.buf += data
        while len(self.buf) >= 4:
            (n,) = struct.unpack(">I", self.buf[:4])
            if len(self.buf) < 4 + n:
                break
            self.frames.append(json.loads(self.buf[4 : 4 + n].decode("utf-8")))
            del self.buf[: 4 + n]

    def close(self):
        self.sock.close()


class Harness:
    """A server, its clients, and every event seen so far (in order)."""

    def __init__(self, test, server):
        self.test = test
        self.server = server
        self.events = []
        self.clients = []

    def connect(self):
        c = FramedClient(self.server.port)
        self.clients.append(c)
        return c

    def hello(self, nick):
        c = self.connect()
        c.send({"type": "hello", "nick": nick})
        welcome = self.frame(c)
        self.test.assertEqual(welcome["type"], "welcome", welcome)
        return c

    def step(self, wait):
        """One round: wait (at most `wait` s) for the server's descriptors
        or a client socket, then pump the server and read the clients."""
        sel = selectors.DefaultSelector()
        try:
            for fd, mask in self.server.fds():
                sel.register(fd, mask)
            for c in self.clients:
                if not c.eof and c.sock.fileno() >= 0:
                    sel.register(c.sock, selectors.EVENT_READ)
            server_wait = self.server.timeout()
            sel.select(wait if server_wait is None else min(wait, server_wait))
        finally:
            sel.close()
        self.events.extend(self.server.pump())
        for c in self.clients:
            if c.sock.fileno() >= 0:
                c.fill()

    def wait(self, cond, what):
        """Steps until cond() is true; returns its value."""
        end = time.monotonic() + DEADLINE
        while True:
            value = cond()
            if value:
                return value
            left = end - time.monotonic()
            if left <= 0:
                self.test.fail("timed out waiting for " + what)
            self.step(left)

    def frame(self, c):
        """The client's next frame."""
        self.wait(lambda: c.frames or c.eof, "a frame")
        if not c.frames:
            self.test.fail("connection closed while waiting for a frame")
        return c.frames.popleft()

    def closed(self, c):
        """Waits for EOF; returns the frames that came before it."""
        self.wait(lambda: c.eof, "the server to close the connection")
        frames = list(c.frames)
        c.frames.clear()
        return frames

    def event(self, kind, **fields):
        """Removes and returns the oldest event of that class (and fields)."""

        def find():
            for i, ev in enumerate(self.events):
                if isinstance(ev, kind) and all(getattr(ev, k) == v for k, v in fields.items()):
                    return (self.events.pop(i),)
            return None

        return self.wait(find, "a %s event with %r" % (kind.__name__, fields))[0]

    def barrier(self, c, tag):
        """Sends a ping and waits for its pong; returns the frames that came
        before it (everything the server had queued for `c` when it read
        the ping), leaving nothing in c.frames."""
        pong = {"type": "pong", "id": tag}
        c.send({"type": "ping", "id": tag})
        self.wait(lambda: pong in c.frames, "pong %r" % (tag,))
        frames = list(c.frames)
        c.frames.clear()
        return frames[: frames.index(pong)]

    def users(self, *nicks):
        """Registers each nick; returns [(client socket, id)] once each has
        read every presence frame about the others and its Connected and
        Registered events are taken."""
        users = []
        for nick in nicks:
            c = self.hello(nick)
            client = self.event(chat.Registered, nick=nick).client
            self.event(chat.Connected, client=client)
            users.append((c, client))
        for c, _ in users:
            self.barrier(c, "users")
        return users

    def close(self):
        for c in self.clients:
            c.close()


class ChatTestCase(unittest.TestCase):
    """A test that starts servers through start(), closed at its end."""

    def start(self, **kwargs):
        """A Harness around a new chat.Server on a free loopback port."""
        server = chat.Server("127.0.0.1:0", **kwargs)
        self.addCleanup(server.close)
        h = Harness(self, server)
        self.addCleanup(h.close)
        return h

    def assertChatError(self, code, call, /, *args, **kwargs):
        """call(*args, **kwargs) raises ChatError with that code (and the
        library's text); returns the error."""
        with self.assertRaises(chat.ChatError) as cm:
            call(*args, **kwargs)
        e = cm.exception
        self.assertEqual(e.code, code, "%s instead of %s" % (e, chat.errors.CODE_NAMES.get(code)))
        self.assertIsInstance(e.message, str)
        self.assertTrue(e.message)
        return e
