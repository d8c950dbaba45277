#!/usr/bin/env python3
"""A small chat host in Python: libchat through the `chat` binding, pumped
from the host's own `selectors` loop together with a stdin console.

    python3 examples/python_host.py [--bad-words W1,W2,...] [--log-level LEVEL]
                                    [LISTEN_ADDR]     (default 127.0.0.1:7878)
    python3 examples/python_host.py --help

Prints `listening on ADDR`, then one line per event:
    connected ID PEER | registered ID NICK | message ID NICK JSON |
    joined ID NICK ROOM | parted ID NICK ROOM | blocked ID NICK JSON |
    disconnected ID NICK REASON          (NICK is - before hello)
Each connection gets a visitor number (1, 2, ...) as the library's user
data, attached when it connects; every later event of it carries the number
back, and its lines end with ` visitor=N`.
Greets each new user with {"type":"banner","text":"welcome, NICK"}.

--bad-words turns on interception: every msg, all and room frame waits for
this host, which drops one whose text has a listed word in it (whole words,
any case) with the error code `moderated` and the message
"message blocked: bad word" (logged as `blocked`), and releases the others
(logged as `message` once routed).

Console: `/say TEXT` sends every user the host notice
{"type":"notice","text":TEXT} (a type no client can send, so nobody can
forge it),
`/kick NICK` disconnects a user (any case: the library looks the nick up),
`/quit` shuts down. /quit, SIGINT or SIGTERM: graceful shutdown, `stopped`,
exit 0. At the end of stdin (</dev/null, or under a service manager) the
console is off and the host keeps serving until a signal.

--log-level (off, error, warn, info, debug, trace; default warn): the
library's records through Python's logging, on stderr as
`chat: LEVEL: MESSAGE` (Server.set_log).

The library is found as chat/_loader.py says (CHAT_LIB, the bundled copy, a
build in CARGO_TARGET_DIR or target/ above the package, or the system's).
"""

import argparse
import logging
import os
import re
import selectors
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bindings", "python"))

import chat  # noqa: E402

STDIN = "stdin"
SERVER = "server"

BLOCKED_CODE = "moderated"
BLOCKED_MESSAGE = "message blocked: bad word"


def log(line):
    print(line, flush=True)


def words(text):
    """The words of a text, case-folded."""
    return re.findall(r"\w+", text.casefold())


class Host:
    """Reacts to events and console commands."""

    def __init__(self, server, bad_words=()):
        self.server = server
        self.bad_words = frozenset(w for word in bad_words for w in words(word))
        self.visitors = 0
        self.stdin_buf = b""
        self.stopping = False

    def on_event(self, ev):
        # The number this host attached, as the event carries it back.
        visitor = " visitor=%d" % ev.user_data if ev.user_data else ""
        if isinstance(ev, chat.Connected):
            log("connected %d %s" % (ev.client, ev.peer))
            self.visitors += 1
            self.try_call(self.server.set_user_data, ev.client, self.visitors)
        elif isinstance(ev, chat.Registered):
            log("registered %d %s%s" % (ev.client, ev.nick, visitor))
            self.try_call(self.server.send, ev.client, {"type": "banner", "text": "welcome, %s" % ev.nick})
        elif isinstance(ev, chat.Message):
            log("message %d %s %s%s" % (ev.client, ev.nick, ev.payload, visitor))
        elif isinstance(ev, (chat.Joined, chat.Parted)):
            word = "joined" if isinstance(ev, chat.Joined) else "parted"
            log("%s %d %s %s%s" % (word, ev.client, ev.nick, ev.room, visitor))
        elif isinstance(ev, chat.Intercepted):
            if self.is_bad(ev):
                log("blocked %d %s %s%s" % (ev.client, ev.nick, ev.payload, visitor))
                self.try_call(self.server.drop, ev.ticket, BLOCKED_CODE, BLOCKED_MESSAGE)
            else:
                # Routed now; a Message event follows.
                self.try_call(self.server.release, ev.ticket)
        elif isinstance(ev, chat.Disconnected):
            log("disconnected %d %s %s%s" % (ev.client, ev.nick or "-", ev.reason, visitor))

    def is_bad(self, ev):
        """Whether an intercepted msg, all or room has a bad word in its text."""
        try:
            text = ev.json().get("text")
        except ValueError:
            return False  # the library parsed it already; cannot happen
        return isinstance(text, str) and not self.bad_words.isdisjoint(words(text))

    def try_call(self, fn, *args):
        try:
            fn(*args)
        except chat.ChatError as e:
            # The client may have left in the round that brought its event:
            # its Disconnected comes next.
            print("%s: %s" % (fn.__name__, e), file=sys.stderr)

    def on_stdin(self, data):
        """Runs the complete lines of what stdin gave; b"" is its end."""
        if not data:
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
            # A host notice: a frame type no client can send, so no user
            # (not even one named "host") can pose as the operator.
            self.server.notice_all(arg)
        elif cmd == "/kick" and arg:
            client = self.server.find_client(arg.strip())
            if client is None:
                print("no such user: %s" % arg, file=sys.stderr)
            else:
                self.server.kick(client, "kicked by the host")
        elif cmd == "/quit" and not arg:
            self.stopping = True
        else:
            print("commands: /say TEXT, /kick NICK, /quit", file=sys.stderr)


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


class Console:
    """stdin as the operator's console, while it lasts. A pipe or a terminal
    goes in the selector; a regular file or /dev/null cannot (epoll refuses
    them) but never blocks, so it is read at once, to its end. At the end
    the console is off and never read again: the host keeps serving."""

    def __init__(self, sel, host):
        self.sel = sel
        self.host = host
        self.fd = None
        try:
            fd = sys.stdin.fileno() if sys.stdin is not None else None
            os.fstat(fd)
        except (AttributeError, OSError, TypeError, ValueError):
            return  # started without a stdin at all: no console
        self.fd = fd
        try:
            sel.register(fd, selectors.EVENT_READ, STDIN)
        except (PermissionError, ValueError):
            while self.fd is not None:
                self.read()

    def read(self):
        data = os.read(self.fd, 65536)
        self.host.on_stdin(data)
        if not data:
            self.close()

    def close(self):
        try:
            self.sel.unregister(self.fd)
        except (KeyError, ValueError):
            pass
        self.fd = None
        print("python_host: end of stdin: the console is off; stop with SIGINT or SIGTERM", file=sys.stderr)


def run(listen, bad_words, log_level):
    # Interception costs a round trip through this host per message: only
    # with something to moderate.
    with chat.Server(listen, intercept_messages=bool(bad_words)) as server:
        host = Host(server, bad_words)
        if log_level is not None:
            server.set_log("chat")
        log("listening on %s" % server.local_addr)

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
        console = Console(sel, host)
        watched = {}
        while not host.stopping:
            sync_watch(sel, watched, server.fds())
            for key, _ in sel.select(server.timeout()):
                if key.data == STDIN and console.fd is not None:
                    console.read()
            for ev in server.pump():
                host.on_event(ev)
        sel.close()
        for ev in server.shutdown(deadline=2.0):
            host.on_event(ev)
    log("stopped")


class LibraryFormat(logging.Formatter):
    """`chat: LEVEL: MESSAGE`, with the level named as the other hosts name
    it."""

    NAMES = {logging.ERROR: "error", logging.WARNING: "warn", logging.INFO: "info", logging.DEBUG: "debug", 5: "trace"}

    def format(self, record):
        level = self.NAMES.get(record.levelno, record.levelname.lower())
        return "%s: %s: %s" % (record.name, level, record.getMessage())


def log_to_stderr(level):
    """The "chat" logger's records, at `level` and above, on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LibraryFormat())
    logger = logging.getLogger("chat")
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


LOG_LEVELS = {
    "off": None,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": 5,
}


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="A chat server in Python over libchat, pumped from its own selectors loop, "
        "with optional moderation. Prints `listening on ADDR`, then one line per event.",
        epilog="Console (stdin): /say TEXT, /kick NICK, /quit. Without a stdin (</dev/null, a service) "
        "it serves until SIGINT or SIGTERM, which shut it down gracefully, as /quit does.",
    )
    parser.add_argument(
        "listen", nargs="?", default="127.0.0.1:7878", help="IP:port; port 0 picks a free one (default %(default)s)"
    )
    parser.add_argument(
        "--bad-words",
        default="",
        metavar="W1,W2,...",
        help="drop msg/all/room frames with one of these words in their text",
    )
    parser.add_argument(
        "--log-level",
        default="warn",
        choices=list(LOG_LEVELS),
        help="the library's records on stderr at this level and above (default %(default)s)",
    )
    args = parser.parse_args(argv[1:])
    args.bad_words = [w for w in args.bad_words.split(",") if w.strip()]
    return args


def main(argv):
    args = parse_args(argv)
    level = LOG_LEVELS[args.log_level]
    if level is not None:
        log_to_stderr(level)
    try:
        run(args.listen, args.bad_words, level)
    except (chat.ChatError, chat.LibraryNotFoundError) as e:
        print("python_host: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
