#!/usr/bin/env python3
"""A chat client over TLS written with Python's own ssl module (OpenSSL), for
tests of the server's TLS listener: a client nobody on the project wrote.

    python3 tests/python/tls_client.py --connect 127.0.0.1:PORT --ca ca.pem \
        [--server-name localhost] [--tls 1.2|1.3] [--insecure] [--rcvbuf BYTES]

stdin, one command a line:
    {"type":"hello","nick":"py"}   a JSON payload, sent as one frame
    !raw 00000002 7b7d             hex bytes, sent as they are inside TLS
    !close                         send close_notify (ssl unwrap) and wait for
                                   the server's own
    !pause                         stop reading from the server (a stalled
                                   reader: with a small --rcvbuf the server's
                                   queue fills up soon)
    !resume                        read again
    (end of stdin)                 stop sending, keep reading until the end

stdout, one line each:
    connected TLSv1.3 TLS_AES_256_GCM_SHA384
    frame {"type":"welcome",...}   each frame received, as JSON
    end close_notify               the server sent close_notify; then one of
    tcp closed                     the server closed TCP after it
    tcp reset                      ... reset it
    tcp data HEX                   ... sent more bytes after close_notify
    end eof_without_close_notify   TCP ended without it (ssl.SSLEOFError,
                                   seen because suppress_ragged_eofs=False)
    end reset                      the connection was reset
    end unwrapped                  !close: both close_notify sent and received
    handshake_failed REASON        then exit status 2

Reads time out after --timeout seconds (default 10): `end timeout`, status 3.
"""
import argparse
import json
import os
import select
import socket
import ssl
import struct
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--connect", required=True, help="HOST:PORT")
    p.add_argument("--ca", help="CA certificate (PEM) to verify the server with")
    p.add_argument("--server-name", default="localhost", help="SNI and the name verified")
    p.add_argument("--tls", choices=["1.2", "1.3"], help="this TLS version only")
    p.add_argument("--insecure", action="store_true", help="verify nothing")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--rcvbuf", type=int, help="SO_RCVBUF before connecting (a small TCP window)")
    return p.parse_args()


def context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if args.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif args.ca:
        ctx.load_verify_locations(cafile=args.ca)
    else:
        ctx.load_default_certs()
    if args.tls:
        version = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[args.tls]
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


class Frames:
    """Reassembles length-prefixed frames from a byte stream."""

    def __init__(self):
        self.buf = b""

    def feed(self, data):
        self.buf += data
        out = []
        while len(self.buf) >= 4:
            (n,) = struct.unpack(">I", self.buf[:4])
            if len(self.buf) < 4 + n:
                break
            out.append(self.buf[4 : 4 + n])
            self.buf = self.buf[4 + n :]
        return out


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def after_close_notify(tls, timeout):
    """What TCP does after the server's close_notify, read from a duplicate
    of the descriptor (the TLS layer reads nothing more after it)."""
    raw = socket.socket(fileno=os.dup(tls.fileno()))
    raw.settimeout(timeout)
    try:
        rest = raw.recv(65536)
    except ConnectionResetError:
        return "tcp reset"
    except socket.timeout:
        return "tcp open"
    finally:
        raw.close()
    return "tcp closed" if not rest else "tcp data " + rest.hex()


def connect(args):
    host, port = args.connect.rsplit(":", 1)
    if args.rcvbuf is None:
        return socket.create_connection((host, int(port)), timeout=args.timeout)
    # The receive buffer must be set before connecting to bound the window.
    info = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0]
    sock = socket.socket(info[0], info[1], info[2])
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    sock.settimeout(args.timeout)
    sock.connect(info[4])
    return sock


class State:
    paused = False


def send_command(tls, line, state):
    """Sends one stdin line (or changes `state`); returns False for !close."""
    line = line.rstrip("\n")
    if not line:
        return True
    if line == "!close":
        return False
    if line in ("!pause", "!resume"):
        state.paused = line == "!pause"
        return True
    if line.startswith("!raw "):
        tls.sendall(bytes.fromhex(line[5:].replace(" ", "")))
        return True
    payload = line.encode("utf-8")
    tls.sendall(struct.pack(">I", len(payload)) + payload)
    return True


def main():
    args = parse_args()
    sock = connect(args)
    try:
        tls = context(args).wrap_socket(
            sock, server_hostname=args.server_name, suppress_ragged_eofs=False
        )
    except (ssl.SSLError, ssl.CertificateError, OSError) as e:
        say(f"handshake_failed {e}")
        return 2
    say(f"connected {tls.version()} {tls.cipher()[0]}")
    frames = Frames()
    stdin_open = True
    pending_input = b""
    state = State()
    while True:
        # Bytes already decrypted inside OpenSSL do not wake select().
        if state.paused or not tls.pending():
            watch = ([] if state.paused else [tls]) + ([sys.stdin] if stdin_open else [])
            if not watch:
                say("end paused_without_input")
                return 3
            ready, _, _ = select.select(watch, [], [], args.timeout)
            if not ready:
                say("end timeout")
                return 3
            if sys.stdin in ready:
                # Read from the descriptor: lines left in a buffered reader
                # would not wake select() again.
                chunk = os.read(sys.stdin.fileno(), 65536)
                if not chunk:
                    stdin_open = False
                pending_input += chunk
                while b"\n" in pending_input:
                    line, pending_input = pending_input.split(b"\n", 1)
                    if not send_command(tls, line.decode("utf-8"), state):
                        try:
                            tls.unwrap()
                            say("end unwrapped")
                        except (ssl.SSLError, OSError) as e:
                            say(f"end unwrap_failed {e}")
                        return 0
                continue
        # Non-blocking for the read: a readable socket may carry only
        # records with no data (TLS 1.3 session tickets), after which a
        # blocking read would wait for data while stdin has a command.
        tls.setblocking(False)
        try:
            data = tls.recv(65536)
        except ssl.SSLWantReadError:
            continue
        except ssl.SSLEOFError:
            say("end eof_without_close_notify")
            return 0
        except ConnectionResetError:
            say("end reset")
            return 0
        except socket.timeout:
            say("end timeout")
            return 3
        finally:
            tls.settimeout(args.timeout)
        if not data:
            # With suppress_ragged_eofs=False an empty read is close_notify.
            say("end close_notify")
            say(after_close_notify(tls, args.timeout))
            return 0
        for frame in frames.feed(data):
            try:
                say("frame " + json.dumps(json.loads(frame), separators=(",", ":")))
            except ValueError:
                say("frame_raw " + frame.hex())


if __name__ == "__main__":
    sys.exit(main())
