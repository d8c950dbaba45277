#!/usr/bin/env python3
"""A small chat host in Python: libchat through the `chat` binding, pumped
from the host's own `selectors` loop together with a stdin console.

    python3 examples/python_host.py [LISTEN_ADDR]     (default 127.0.0.1:7878)

Prints `listening on ADDR`, then one line per event:
    connected ID PEER | registered ID NICK | message ID NICK JSON |
    disconnected ID NICK REASON          (NICK is - before hello)
greets each new user with {"type":"banner","text":"welcome, NICK"}.
Console: `/say TEXT` broadcasts {"type":"all","from":"host","text":TEXT},
`/kick NICK` disconnects a user. End of stdin, SIGINT or SIGTERM: graceful
shutdown, `stopped`, exit 0. The library is found as chat/_lib.py says
(CHAT_LIB, CARGO_TARGET_DIR, or target/ above the package).
"""

import os
import selectors
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bindings", "python"))

import chat  # noqa: E402

STDIN = "stdin"
SERVER = "server"


def log(line):
    print(line, flush=True)


class Host:
    """Reacts to events and console commands."""

    def __init__(self, server):
        self.server = server
        self.by_nick = {}  # lower-case nick -> client id (nicks are case-insensitive)
        self.stdin_buf = b""
        self.stopping = False

    def on_event(self, ev):
        if isinstance(ev, chat.Connected):
            log("connected %d %s" % (ev.client, ev.peer))
        elif isinstance(ev, chat.Registered):
            log("registered %d %s" % (ev.client, ev.nick))
            self.by_nick[ev.nick.lower()] = ev.client
            self.try_send(ev.client, {"type": "banner", "text": "welcome, %s" % ev.nick})
        elif isinstance(ev, chat.Message):
            log("message %d %s %s" % (ev.client, ev.nick, ev.payload))
        elif isinstance(ev, chat.Disconnected):
            log("disconnected %d %s %s" % (ev.client, ev.nick or "-", ev.reason))
            if ev.nick and self.by_nick.get(ev.nick.lower()) == ev.client:
                del self.by_nick[ev.nick.lower()]

    def try_send(self, client, msg):
        try:
            self.server.send(client, msg)
        except chat.ChatError as e:
            # The client may have left in the same round that registered it.
            print("send to %d: %s" % (client, e), file=sys.stderr)

    def on_stdin(self, data):
        if not data:
            self.stopping = True
            data = b"\n"  # a last line without a newline still counts
        self.stdin_buf += data
        *lines, self.stdin_buf = self.stdin_buf.split(b"\n")
        for line in lines:
            self.command(line.decode("utf-8", "replace").rstrip("\r"))

    def command(self, line):
        try:
            self.run_command(line)
        except chat.ChatError as e:
            print("%s: %s" % (line, e), file=sys.stderr)

    def run_command(self, line):
        cmd, _, arg = line.partition(" ")
        if not cmd:
            return
        if cmd == "/say" and arg:
            self.server.broadcast({"type": "all", "from": "host", "text": arg})
        elif cmd == "/kick" and arg:
            client = self.by_nick.get(arg.strip().lower())
            if client is None:
                print("no such user: %s" % arg, file=sys.stderr)
            else:
                self.server.kick(client, "kicked by the host")
        else:
            print("commands: /say TEXT, /kick NICK", file=sys.stderr)


def sync_watch(sel, watched, wanted):
    """Brings the selector's server descriptors in line with fds(): the set
    changes after every round."""
    wanted = dict(wanted)
    for fd in [fd for fd in watched if fd not in wanted]:
        sel.unregister(fd)
        del watched[fd]
    for fd, mask in wanted.items():
        if fd not in watched:
            sel.register(fd, mask, SERVER)
        elif watched[fd] != mask:
            sel.modify(fd, mask, SERVER)
        watched[fd] = mask


def run(listen):
    with chat.Server(listen) as server:
        host = Host(server)
        log("listening on %s:%d" % (listen.rsplit(":", 1)[0], server.port))

        def on_signal(signum, frame):
            host.stopping = True
            try:
                # Makes the server's wake descriptor readable, so select returns.
                server.wakeup()
            except chat.ChatError:
                pass  # already closed: nothing to wake

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

        sel = selectors.DefaultSelector()
        stdin_fd = sys.stdin.fileno()
        try:
            sel.register(stdin_fd, selectors.EVENT_READ, STDIN)
            stdin_polled = True
        except (PermissionError, ValueError):
            # A regular file (or /dev/null) cannot go in epoll; it never
            # blocks, so read it every round instead.
            stdin_polled = False
        watched = {}
        while not host.stopping:
            sync_watch(sel, watched, server.fds())
            timeout = server.timeout() if stdin_polled else 0
            for key, _ in sel.select(timeout):
                if key.data == STDIN:
                    host.on_stdin(os.read(stdin_fd, 65536))
            if not stdin_polled:
                host.on_stdin(os.read(stdin_fd, 65536))
            for ev in server.pump():
                host.on_event(ev)
        sel.close()
        for ev in server.shutdown(deadline=2.0):
            host.on_event(ev)
    log("stopped")


def main(argv):
    listen = argv[1] if len(argv) > 1 else "127.0.0.1:7878"
    try:
        run(listen)
    except (chat.ChatError, chat.LibraryNotFoundError) as e:
        print("python_host: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
