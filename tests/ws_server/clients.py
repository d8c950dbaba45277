"""WebSocket clients nobody here wrote (Python `websockets` and
`websocket-client`) against the chat server itself, with a plain TCP
client beside them.

    clients.py chat URL TCP_ADDR MAX_MESSAGE [CA_FILE]
        WebSocket and TCP clients in one chat (msg, all, rooms, presence,
        both ways), pings, the closing handshakes, and the close code for
        each kind of client fault. Prints `ok NAME` per check; exits
        non-zero at the first failure. URL is ws:// or wss:// (then CA_FILE
        is the CA to verify the server with).

    clients.py wait URL NICK [--rcvbuf BYTES] [--pause] [--ca CA_FILE]
                             [--flood N]
        Registers NICK with websocket-client and prints `registered NICK
        LOCAL_PORT`; with --flood, sends N messages to everyone at once;
        with --pause, reads nothing until a line `resume` comes on stdin.
        Then prints each text message (`text JSON`) until the server's
        close frame (`close CODE REASON`), answers it, and prints what TCP
        did then (`tcp closed`; `tcp closed first` if it was closed before
        the answer could be sent; `tcp open` if it stayed open).
"""

import contextlib
import json
import select
import socket
import ssl
import struct
import sys

import websocket  # websocket-client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

TIMEOUT = 10


def ok(name):
    print("ok", name, flush=True)


def context(ca):
    if ca is None:
        return None
    return ssl.create_default_context(cafile=ca)


# --- clients ------------------------------------------------------------


class Tcp:
    """A length-prefixed JSON client over TCP (inside TLS when the server
    has a certificate: `ca` is then the CA to verify it with)."""

    def __init__(self, addr, ca=None):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        if ca is not None:
            self.sock = context(ca).wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""

    def send(self, obj):
        payload = json.dumps(obj).encode()
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def recv(self):
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack(">I", self.buf[:4])
                if len(self.buf) >= 4 + n:
                    payload, self.buf = self.buf[4 : 4 + n], self.buf[4 + n :]
                    return json.loads(payload)
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed the TCP client"
            self.buf += chunk

    def close(self):
        self.sock.close()


# Every websockets connection is entered here, so each is used as the
# context manager it is meant to be, and all are closed at exit.
CONNECTIONS = contextlib.ExitStack()


def websockets_client(url, ca):
    # proxy=None: loopback only, whatever the environment says.
    return CONNECTIONS.enter_context(connect(url, proxy=None, open_timeout=TIMEOUT, close_timeout=TIMEOUT, max_size=None,
                   compression=None, ping_interval=None, ssl=context(ca)))


def wc_client(url, ca, sockopt=()):
    sslopt = {"ca_certs": ca} if ca else {}
    return websocket.create_connection(url, timeout=TIMEOUT, http_no_proxy=["127.0.0.1", "localhost"],
                                       skip_utf8_validation=True, sslopt=sslopt, sockopt=sockopt)


def wc_json(ws):
    return json.loads(ws.recv())


def ws_json(ws):
    return json.loads(ws.recv(timeout=TIMEOUT))


def hello(send, recv, nick):
    send(json.dumps({"type": "hello", "nick": nick}))
    welcome = json.loads(recv())
    assert welcome["type"] == "welcome", welcome
    return welcome


def wc_until_close(ws):
    """Text messages until the server's close frame; returns them, the
    code and the reason."""
    texts = []
    while True:
        opcode, frame = ws.recv_data_frame(True)
        if opcode == websocket.ABNF.OPCODE_TEXT:
            texts.append(json.loads(frame.data))
        elif opcode == websocket.ABNF.OPCODE_CLOSE:
            code = struct.unpack("!H", frame.data[:2])[0] if len(frame.data) >= 2 else None
            return texts, code, frame.data[2:].decode("utf-8", "replace")


def wc_answer_close_and_see_tcp(ws):
    """Answers the server's close frame, then reads the socket: the server
    must close TCP itself after the closing handshake."""
    try:
        ws.send_close(websocket.STATUS_NORMAL)
    except (BrokenPipeError, ConnectionResetError):
        # A server going away (shutdown) closes right after its close frame.
        return "tcp closed first"
    try:
        rest = ws.sock.recv(1)
    except (ConnectionResetError, ssl.SSLError):
        return "tcp reset"
    except socket.timeout:
        return "tcp open"
    finally:
        ws.sock.close()
    return "tcp closed" if not rest else "tcp data"


def presence(nick, state, **more):
    return dict({"type": "presence", "nick": nick, "state": state}, **more)


# --- chat -----------------------------------------------------------------


def chat(url, tcp_addr, max_message, ca):
    alice = websockets_client(url, ca)
    welcome = hello(alice.send, lambda: alice.recv(timeout=TIMEOUT), "alice")
    assert welcome["users"] == ["alice"], welcome
    bob = Tcp(tcp_addr, ca)
    bob.send({"type": "hello", "nick": "bob"})
    assert bob.recv()["users"] == ["alice", "bob"]
    assert ws_json(alice) == presence("bob", "online")
    carol = wc_client(url, ca)
    assert hello(carol.send, carol.recv, "carol")["users"] == ["alice", "bob", "carol"]
    assert ws_json(alice) == presence("carol", "online")
    assert bob.recv() == presence("carol", "online")
    ok("websockets, websocket-client and TCP clients register in one chat")

    bob.send({"type": "all", "text": "from tcp"})
    for got in (ws_json(alice), wc_json(carol)):
        assert got == {"type": "all", "from": "bob", "text": "from tcp"}, got
    alice.send(json.dumps({"type": "all", "text": "from websockets κόσμε 🌍"}))
    for got in (bob.recv(), wc_json(carol)):
        assert got == {"type": "all", "from": "alice", "text": "from websockets κόσμε 🌍"}, got
    carol.send(json.dumps({"type": "msg", "to": "bob", "text": "to tcp", "id": 1}))
    assert bob.recv() == {"type": "msg", "from": "carol", "to": "bob", "text": "to tcp"}
    assert wc_json(carol) == {"type": "ack", "id": 1, "queued": 1}
    bob.send({"type": "msg", "to": "alice", "text": "to websockets"})
    assert ws_json(alice) == {"type": "msg", "from": "bob", "to": "alice", "text": "to websockets"}
    alice.send(json.dumps({"type": "msg", "to": "carol", "text": "ws to ws"}))
    assert wc_json(carol) == {"type": "msg", "from": "alice", "to": "carol", "text": "ws to ws"}
    ok("msg and all both ways between WebSocket and TCP")

    bob.send({"type": "join", "room": "#mix"})
    assert bob.recv() == {"type": "joined", "room": "#mix", "members": ["bob"]}
    alice.send(json.dumps({"type": "join", "room": "#mix"}))
    assert ws_json(alice) == {"type": "joined", "room": "#mix", "members": ["alice", "bob"]}
    assert bob.recv() == presence("alice", "joined", room="#mix")
    carol.send(json.dumps({"type": "join", "room": "#mix"}))
    assert wc_json(carol)["members"] == ["alice", "bob", "carol"]
    assert ws_json(alice) == presence("carol", "joined", room="#mix")
    assert bob.recv() == presence("carol", "joined", room="#mix")
    bob.send({"type": "room", "room": "#mix", "text": "tcp in the room"})
    for got in (ws_json(alice), wc_json(carol)):
        assert got == {"type": "room", "room": "#mix", "from": "bob", "text": "tcp in the room"}, got
    alice.send(json.dumps({"type": "room", "room": "#mix", "text": "ws in the room"}))
    for got in (bob.recv(), wc_json(carol)):
        assert got == {"type": "room", "room": "#mix", "from": "alice", "text": "ws in the room"}, got
    carol.send(json.dumps({"type": "who"}))
    assert wc_json(carol) == {"type": "users", "users": ["alice", "bob", "carol"]}
    ok("rooms both ways between WebSocket and TCP")

    alice.send(json.dumps({"type": "ping", "id": [7, "x"]}))
    assert ws_json(alice) == {"type": "pong", "id": [7, "x"]}
    assert alice.ping(b"are you there").wait(TIMEOUT), "no pong"
    carol.ping("mid-chat")
    opcode, frame = carol.recv_data_frame(True)
    assert opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"mid-chat", (opcode, frame.data)
    ok("the protocol's ping and WebSocket pings are answered")

    carol.send(json.dumps({"type": "quit"}))
    texts, code, reason = wc_until_close(carol)
    assert texts == [] and code == 1000, (texts, code, reason)
    assert wc_answer_close_and_see_tcp(carol) == "tcp closed"
    assert ws_json(alice) == presence("carol", "parted", room="#mix")
    assert ws_json(alice) == presence("carol", "offline", reason="quit")
    assert bob.recv() == presence("carol", "parted", room="#mix")
    assert bob.recv() == presence("carol", "offline", reason="quit")
    ok("quit closes with 1000, then the server closes TCP")

    alice.close(1000, "bye")
    assert alice.protocol.close_rcvd is not None and alice.protocol.close_rcvd.code == 1000
    assert bob.recv() == presence("alice", "parted", room="#mix")
    assert bob.recv() == presence("alice", "offline", reason="disconnect")
    ok("a client's closing handshake: the server answers 1000 and the client leaves as disconnect")

    # A close frame from websocket-client: answered, then TCP closed.
    dave = wc_client(url, ca)
    hello(dave.send, dave.recv, "dave")
    assert bob.recv() == presence("dave", "online")
    dave.send_close(1001, b"going")
    opcode, frame = dave.recv_data_frame(True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE and frame.data[:2] == b"\x03\xe9", frame.data
    assert dave.sock.recv(1) == b"", "TCP stays open after the closing handshake"
    dave.sock.close()
    assert bob.recv() == presence("dave", "offline", reason="disconnect")
    ok("the server closes TCP after a client's closing handshake")
    bob.close()

    faults(url, max_message, ca)


def faults(url, max_message, ca):
    def fault(name, send, want, registered=True):
        ws = wc_client(url, ca)
        if registered:
            hello(ws.send, ws.recv, "f" + str(abs(hash(name)) % 100000))
        send(ws)
        texts, code, reason = wc_until_close(ws)
        assert code == want, (name, code, reason, texts)
        # What came before the close is at most the error text message.
        assert all(t["type"] == "error" for t in texts), texts
        ws.abort()
        ok(name)

    fault("binary closes with 1003",
          lambda ws: ws.send_frame(websocket.ABNF.create_frame(b"\x00\x01", websocket.ABNF.OPCODE_BINARY)), 1003)

    def oversized_header_only(ws):
        # The header of a masked text frame of MAX + 1 bytes, and no body:
        # the server must refuse it from the header alone.
        n = max_message + 1
        head = bytes([0x81, 0x80 | 127]) + struct.pack("!Q", n) + b"\x01\x02\x03\x04"
        ws.sock.sendall(head)

    fault("a message over the limit closes with 1009 from its header alone", oversized_header_only, 1009)
    fault("a message over the limit closes with 1009 before hello too", oversized_header_only, 1009,
          registered=False)
    fault("fragments over the limit close with 1009",
          lambda ws: [ws.send_frame(websocket.ABNF.create_frame("a" * (max_message // 2 + 1),
                                                                websocket.ABNF.OPCODE_TEXT if i == 0
                                                                else websocket.ABNF.OPCODE_CONT, fin=0))
                      for i in range(2)], 1009)
    fault("invalid UTF-8 closes with 1007",
          lambda ws: ws.send_frame(websocket.ABNF.create_frame(b'{"type":"all","text":"\xff"}',
                                                               websocket.ABNF.OPCODE_TEXT)), 1007)
    fault("an unmasked frame closes with 1002",
          lambda ws: ws.send_frame(websocket.ABNF(fin=1, opcode=websocket.ABNF.OPCODE_TEXT, mask_value=0,
                                                  data="x")), 1002)
    fault("a reserved bit closes with 1002",
          lambda ws: ws.send_frame(websocket.ABNF(fin=1, rsv1=1, opcode=websocket.ABNF.OPCODE_TEXT, data="x")),
          1002)
    fault("a stray continuation closes with 1002",
          lambda ws: ws.send_frame(websocket.ABNF.create_frame("x", websocket.ABNF.OPCODE_CONT, fin=1)), 1002)

    # websockets, too: binary and oversized.
    for data, want, name in [(b"\x00binary", 1003, "binary"), ("z" * (max_message + 1), 1009, "oversized")]:
        ws = websockets_client(url, ca)
        ws.send(data)
        try:
            while True:
                ws.recv(timeout=TIMEOUT)
        except ConnectionClosed as e:
            assert e.rcvd is not None and e.rcvd.code == want, (name, e.rcvd)
        ok("websockets " + name + " closes with " + str(want))


# --- wait -----------------------------------------------------------------


def wait(url, nick, rcvbuf, pause, ca, flood):
    sockopt = ((socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf),) if rcvbuf else ()
    ws = wc_client(url, ca, sockopt)
    hello(ws.send, ws.recv, nick)
    print("registered", nick, ws.sock.getsockname()[1], flush=True)
    for i in range(flood):
        ws.send(json.dumps({"type": "all", "text": "flood %d" % i}))
    if pause:
        line = sys.stdin.readline()
        assert line.strip() == "resume", line
    texts, code, reason = wc_until_close(ws)
    for t in texts:
        print("text", json.dumps(t, separators=(",", ":")), flush=True)
    print("close", code, reason, flush=True)
    print(wc_answer_close_and_see_tcp(ws), flush=True)


def main():
    with CONNECTIONS:
        run()


def run():
    mode = sys.argv[1]
    if mode == "chat":
        url, tcp_addr, max_message = sys.argv[2], sys.argv[3], int(sys.argv[4])
        ca = sys.argv[5] if len(sys.argv) > 5 else None
        chat(url, tcp_addr, max_message, ca)
    elif mode == "wait":
        args = sys.argv[2:]
        url, nick = args[0], args[1]
        opts = args[2:]

        def opt(name, default=None):
            return opts[opts.index(name) + 1] if name in opts else default

        wait(url, nick, int(opt("--rcvbuf", 0)), "--pause" in opts, opt("--ca"), int(opt("--flood", 0)))
    else:
        raise SystemExit("usage: clients.py chat|wait ...")


if __name__ == "__main__":
    main()
