"""Checks a WebSocket echo server with two independent clients, Python
`websockets` and `websocket-client`: round trips, fragments, pings, the
closing handshake, and the close code for each kind of bad input.

Usage: clients.py ws://HOST:PORT/PATH MAX_MESSAGE
Prints `ok NAME` per check; exits non-zero at the first failure.
"""

import socket
import struct
import sys

import websocket  # websocket-client
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK
from websockets.sync.client import connect

URL = sys.argv[1]
MAX = int(sys.argv[2])
TIMEOUT = 10


def ok(name):
    print("ok", name, flush=True)


def ws_connect():
    # proxy=None: loopback only, whatever the environment says.
    return connect(URL, proxy=None, open_timeout=TIMEOUT, close_timeout=TIMEOUT, max_size=None,
                   compression=None, ping_interval=None)


def closed_with(ws, code):
    """Waits for the server to close `ws`; checks its close code."""
    try:
        ws.recv(timeout=TIMEOUT)
    except (ConnectionClosedError, ConnectionClosedOK) as e:
        assert e.rcvd is not None, "the server sent no close frame"
        assert e.rcvd.code == code, f"close code {e.rcvd.code}, wanted {code}"
        return e.rcvd.reason
    raise AssertionError("the connection stayed open")


# --- websockets ---------------------------------------------------------

with ws_connect() as ws:
    for text in ["hello", "", "κόσμε 🌍 中文", "x" * 125, "y" * 126, "z" * MAX]:
        ws.send(text)
        assert ws.recv(timeout=TIMEOUT) == text
    ok("websockets text round trip")

    ws.send(["frag", "men", "ted ", "κ"])  # an iterable is sent as fragments
    assert ws.recv(timeout=TIMEOUT) == "fragmented κ"
    ok("websockets fragmented message")

    pong = ws.ping(b"are you there")
    assert pong.wait(TIMEOUT), "no pong"
    ok("websockets ping")

    ws.close(1000, "bye")
    assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000
    ok("websockets closing handshake")

with ws_connect() as ws:
    ws.send(b"\x00\x01binary")
    reason = closed_with(ws, 1003)
    assert reason, "a reason is given"
    ok("websockets binary closes with 1003")

with ws_connect() as ws:
    ws.send("a" * (MAX + 1))
    closed_with(ws, 1009)
    ok("websockets oversized closes with 1009")

with ws_connect() as ws:
    ws.send(["a" * (MAX // 2), "b" * (MAX // 2), "c"])  # fragments over the limit together
    closed_with(ws, 1009)
    ok("websockets oversized fragments close with 1009")


# --- websocket-client (its low-level frames) -----------------------------

def wc_connect():
    return websocket.create_connection(URL, timeout=TIMEOUT, http_no_proxy=["127.0.0.1", "localhost"],
                                       skip_utf8_validation=True)


def wc_close_code(ws):
    """The server's close frame: its code, after any other frames."""
    while True:
        opcode, frame = ws.recv_data_frame(True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return struct.unpack("!H", frame.data[:2])[0]


ws = wc_connect()
ws.send("hello from websocket-client")
assert ws.recv() == "hello from websocket-client"
ws.send_frame(websocket.ABNF.create_frame("one ", websocket.ABNF.OPCODE_TEXT, fin=0))
ws.ping("mid-message")
ws.send_frame(websocket.ABNF.create_frame("two", websocket.ABNF.OPCODE_CONT, fin=1))
opcode, frame = ws.recv_data_frame(True)
assert opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"mid-message", (opcode, frame.data)
opcode, frame = ws.recv_data_frame(True)
assert opcode == websocket.ABNF.OPCODE_TEXT and frame.data == b"one two", (opcode, frame.data)
ok("websocket-client fragments around a ping")
ws.close(status=1000)
ok("websocket-client closing handshake")

ws = wc_connect()
ws.send_frame(websocket.ABNF.create_frame(b"valid then \xf4\x90\x80\x80", websocket.ABNF.OPCODE_TEXT))
assert wc_close_code(ws) == 1007
ws.abort()
ok("websocket-client invalid UTF-8 closes with 1007")

ws = wc_connect()
ws.send_frame(websocket.ABNF.create_frame(b"\xce", websocket.ABNF.OPCODE_TEXT, fin=0))
ws.send_frame(websocket.ABNF.create_frame(b"\xff", websocket.ABNF.OPCODE_CONT, fin=0))
assert wc_close_code(ws) == 1007
ws.abort()
ok("websocket-client invalid UTF-8 across fragments closes with 1007 before the end")

ws = wc_connect()
ws.send_frame(websocket.ABNF(fin=1, rsv1=1, opcode=websocket.ABNF.OPCODE_TEXT, data="x"))
assert wc_close_code(ws) == 1002
ws.abort()
ok("websocket-client reserved bit closes with 1002")

ws = wc_connect()
ws.send_frame(websocket.ABNF(fin=1, opcode=websocket.ABNF.OPCODE_TEXT, mask_value=0, data="x"))
assert wc_close_code(ws) == 1002
ws.abort()
ok("websocket-client unmasked frame closes with 1002")

ws = wc_connect()
ws.send_frame(websocket.ABNF.create_frame("x", websocket.ABNF.OPCODE_CONT, fin=1))
assert wc_close_code(ws) == 1002
ws.abort()
ok("websocket-client stray continuation closes with 1002")

ws = wc_connect()
ws.send_frame(websocket.ABNF.create_frame("p" * 126, websocket.ABNF.OPCODE_PING))
assert wc_close_code(ws) == 1002
ws.abort()
ok("websocket-client oversized ping closes with 1002")

ws = wc_connect()
ws.send_frame(websocket.ABNF.create_frame(b"\x00" * 10, websocket.ABNF.OPCODE_BINARY))
assert wc_close_code(ws) == 1003
ws.abort()
ok("websocket-client binary closes with 1003")

# A peer that vanishes: TCP closed with no close frame.
ws = wc_connect()
ws.send("last words")
assert ws.recv() == "last words"
ws.sock.shutdown(socket.SHUT_RDWR)
ws.sock.close()
ok("websocket-client vanished")
