"""chat.Server: one libchat server handle with a Pythonic face."""

import json
import logging
import math
import selectors
import threading
import time

from . import _lib, _log
from .errors import ERR_NULL, ChatError
from .events import Stats, from_raw

# ChatConfig switches (0 or 1 in C), given as bool.
_SWITCHES = ("approve_registrations", "intercept_messages", "reuse_port")

# ChatConfig strings, given as str.
_TEXTS = ("ws_listen_addr", "ws_path", "redis_url", "cluster_name")

# ChatConfig PEM blobs (pointer and length in C), given as bytes.
_BLOBS = ("tls_cert_pem", "tls_key_pem")

# Every other number in ChatConfig a caller may set, with the largest value
# its C type holds (ctypes would silently truncate a bigger one). Read off
# the struct, so a field added to it is a keyword argument at once.
_LIMITS = {
    name: (_lib.UINT64_MAX if ctype is _lib.c_uint64 else _lib.UINT32_MAX)
    for name, ctype in _lib.ChatConfig._fields_
    if ctype in (_lib.c_uint32, _lib.c_uint64) and name != "struct_size" and name not in _SWITCHES
}


def _check_int(name, value, maximum):
    # bool is an int subclass, but True as a client id is a bug, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, not %s" % (name, type(value).__name__))
    if not 0 <= value <= maximum:
        raise ValueError("%s must be between 0 and %d, got %d" % (name, maximum, value))
    return value


def _check_bool(name, value):
    # 2 would be CHAT_ERR_CONFIG in C; here a switch is a bool or nothing.
    if not isinstance(value, bool):
        raise TypeError("%s must be a bool, not %s" % (name, type(value).__name__))
    return int(value)


def _text_arg(name, value):
    """UTF-8 bytes for a C string argument."""
    if not isinstance(value, str):
        raise TypeError("%s must be a str, not %s" % (name, type(value).__name__))
    if "\0" in value:
        # C would silently see only the part before the NUL.
        raise ValueError("%s must not contain NUL" % name)
    # A lone surrogate cannot be UTF-8: UnicodeEncodeError, a ValueError.
    return value.encode("utf-8")


def _optional_text(name, value):
    """_text_arg, or None (NULL in C) for None."""
    return None if value is None else _text_arg(name, value)


def _payload(msg):
    """The JSON bytes for a dict (encoded here), str or bytes (sent as is;
    the library checks that they hold one JSON object)."""
    if isinstance(msg, dict):
        return json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if isinstance(msg, str):
        return msg.encode("utf-8")
    if isinstance(msg, (bytes, bytearray, memoryview)):
        return bytes(msg)
    raise TypeError("a message must be a dict, str or bytes, not %s" % type(msg).__name__)


def _timeout_ms(timeout):
    """Seconds (or None: no limit) as the library's int32 milliseconds,
    rounded up so a short wait never becomes a busy loop."""
    if timeout is None:
        return -1
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("timeout must be a number of seconds or None, not %s" % type(timeout).__name__)
    if math.isnan(timeout) or timeout < 0:
        raise ValueError("timeout must be >= 0 seconds or None, got %r" % timeout)
    return min(math.ceil(timeout * 1000), _lib.INT32_MAX)


class Server:
    """A chat server listening on ``listen`` ("IP:port"; port 0 picks a free
    one, see ``port``). Settings left as None keep the library's defaults;
    each keyword is the ChatConfig field of the same name (see
    include/chat.h): numbers as ints, ``approve_registrations``,
    ``intercept_messages`` and ``reuse_port`` as bools, ``ws_listen_addr``,
    ``ws_path``, ``redis_url`` and ``cluster_name`` as str,
    ``ws_allowed_origins`` as a list of str, ``tls_cert_pem`` and
    ``tls_key_pem`` as bytes (the PEM text, never a path).

    The host pumps it: ``poll()`` in a loop, or ``fds()``/``timeout()`` in
    its own selector and ``pump()`` when one is ready. Not thread-safe except
    ``wakeup()`` and ``close()``, which may be called from any thread (using
    it from two threads at once raises RuntimeError instead of crashing).

    The library is silent until ``set_log()`` sends this server's log
    records to a ``logging`` logger (``"chat"`` by default).
    """

    def __init__(self, listen="127.0.0.1:0", **options):
        self._handle = None
        self._closing = False
        # _lock is held for every library call; _wake_lock only guards the
        # handle against being freed under wakeup(), so that wakeup never
        # waits for a blocked poll. Both reentrant: a signal handler on the
        # pumping thread may call wakeup() or close().
        self._lock = threading.RLock()
        self._wake_lock = threading.RLock()
        # The C callback set with set_log, kept alive while the library
        # holds it.
        self._log_callback = None
        limits = {}
        for name, value in options.items():
            if value is None:
                if name not in _LIMITS and name not in _SWITCHES and name not in _TEXTS + _BLOBS + (
                    "ws_allowed_origins",
                ):
                    raise TypeError("Server() got an unexpected keyword argument %r" % name)
                continue
            if name in _SWITCHES:
                limits[name] = _check_bool(name, value)
            elif name in _LIMITS:
                limits[name] = _check_int(name, value, _LIMITS[name])
            elif name in _TEXTS:
                limits[name] = _text_arg(name, value)
            elif name == "ws_allowed_origins":
                origins = [value] if isinstance(value, str) else list(value)
                for origin in origins:
                    if not isinstance(origin, str) or "," in origin:
                        raise ValueError("ws_allowed_origins: each origin is a str without commas")
                limits[name] = _text_arg(name, ",".join(origins))
            elif name in _BLOBS:
                if not isinstance(value, (bytes, bytearray)):
                    raise TypeError("%s must be bytes (the PEM text), not %s" % (name, type(value).__name__))
                if not value:
                    raise ValueError("%s must not be empty" % name)
                limits[name] = bytes(value)
                limits[name.replace("_pem", "_len")] = len(value)
            else:
                raise TypeError("Server() got an unexpected keyword argument %r" % name)
        self._handle = _lib.server_new(_text_arg("listen", listen), limits)

    # -- lifetime ---------------------------------------------------------

    def close(self):
        """Frees the server, closing every socket at once (use shutdown()
        first for a graceful end). Safe to call twice, and from another
        thread: it wakes a blocked poll and waits for it to return."""
        with self._wake_lock:
            handle = self._handle
            if handle is None:
                return
            # Another thread's call now fails as "closed", not "busy".
            self._closing = True
            try:
                _lib.wakeup(handle)
            except ChatError:
                pass  # nobody may be blocked; freeing matters more
        with self._lock:
            with self._wake_lock:
                handle, self._handle = self._handle, None
            if handle is not None:
                _lib.server_free(handle)

    @property
    def closed(self):
        """Whether close() was called."""
        return self._handle is None

    def __enter__(self):
        self._live()
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # __init__ may have failed before _handle existed, and at interpreter
        # exit the modules this needs may already be gone.
        if getattr(self, "_handle", None) is not None:
            try:
                self.close()
            except Exception:
                pass

    def _live(self):
        handle = self._handle
        if handle is None:
            raise ChatError(ERR_NULL, "the server is closed")
        return handle

    def _call(self, fn, *args):
        """fn(handle, *args) under the lock; raises if closed or busy."""
        self._enter()
        try:
            return fn(self._live(), *args)
        finally:
            self._lock.release()

    def _enter(self):
        if not self._lock.acquire(blocking=False):
            if self._closing:
                raise ChatError(ERR_NULL, "the server is closed")
            raise RuntimeError("chat.Server used from two threads at once (only wakeup/close are thread-safe)")

    # -- the pump ---------------------------------------------------------

    @property
    def port(self):
        """The bound port."""
        return self._call(_lib.port)

    def poll(self, timeout=None):
        """One round of I/O, waiting up to ``timeout`` seconds (None: until
        something happens), then every waiting event, oldest first."""
        ms = _timeout_ms(timeout)
        self._enter()
        try:
            _lib.poll_once(self._live(), ms)
            events = []
            while True:
                # _live() again: a signal handler may have closed us.
                raw = _lib.next_event(self._live())
                if raw is None:
                    return events
                events.append(from_raw(raw))
        finally:
            self._lock.release()

    def pump(self):
        """poll(0): for a host whose own selector said a descriptor is ready
        or whose timeout() passed."""
        return self.poll(0)

    def fds(self):
        """[(fd, mask)] to watch now, mask of selectors.EVENT_READ and
        EVENT_WRITE. The set changes after every call that does I/O or
        queues output: ask again each round."""
        out = []
        for fd, readable, writable in self._call(_lib.fds):
            mask = (selectors.EVENT_READ if readable else 0) | (selectors.EVENT_WRITE if writable else 0)
            out.append((fd, mask))
        return out

    def timeout(self):
        """Seconds the host may wait before pumping again, or None: no limit."""
        ms = self._call(_lib.timeout_ms)
        return None if ms < 0 else ms / 1000.0

    def wakeup(self):
        """Makes a blocked poll() return. Safe from any thread and from a
        signal handler."""
        with self._wake_lock:
            _lib.wakeup(self._live())

    # -- lookups ---------------------------------------------------------------

    @property
    def local_addr(self):
        """The address the server listens on, "IP:port" (the real port)."""
        return self._call(_lib.local_addr)

    @property
    def ws_addr(self):
        """The WebSocket listener's address, or None without one."""
        return self._call(_lib.ws_addr)

    def find_client(self, nick):
        """The id of the registered client named ``nick``, compared as the
        protocol compares nicks (``"ALICE"`` finds alice), or None."""
        return self._call(_lib.find_client, _text_arg("nick", nick))

    def nick(self, client):
        """A connected client's nick, or None before its hello. Raises
        ChatError (ERR_UNKNOWN_CLIENT) for an id that is not connected."""
        client = _check_int("client", client, _lib.UINT64_MAX)
        return self._call(_lib.client_nick, client)

    def peer(self, client):
        """A connected client's address, "IP:port". Raises ChatError
        (ERR_UNKNOWN_CLIENT) for an id that is not connected."""
        client = _check_int("client", client, _lib.UINT64_MAX)
        return self._call(_lib.client_peer, client)

    # -- logging -------------------------------------------------------------

    def set_log(self, logger="chat", level=None):
        """Sends this server's log records to ``logger`` (a logging.Logger,
        or a name: ``"chat"`` by default), from ``level`` up (a logging
        level; None: the logger's effective level now). The library's
        levels map to ERROR, WARNING, INFO, DEBUG and TRACE (5).
        ``set_log(None)`` turns it off. Records are logged on the thread
        that pumps the server, inside the call that made them; the first one
        says where the server listens. They never hold a payload, a token, a
        key or a password."""
        if logger is None:
            self._call(_lib.set_log, _lib.LOG_OFF, None)
            self._log_callback = None
            return
        if isinstance(logger, str):
            logger = logging.getLogger(logger)
        if not isinstance(logger, logging.Logger):
            raise TypeError("logger must be a logging.Logger, a name or None, not %s" % type(logger).__name__)
        c_level = _log.library_level(logger.getEffectiveLevel() if level is None else level)
        callback = _log.callback(logger) if c_level != _lib.LOG_OFF else None
        self._call(_lib.set_log, c_level, callback)
        # The library holds the new one now: the old one may go.
        self._log_callback = callback

    # -- acting as the host -------------------------------------------------

    def send(self, client, msg):
        """Queues one JSON object (dict, str or bytes) to one client."""
        client = _check_int("client", client, _lib.UINT64_MAX)
        self._call(_lib.send, client, _payload(msg))

    def broadcast(self, msg):
        """Queues one JSON object to every registered client; returns how
        many it was queued to."""
        return self._call(_lib.broadcast, _payload(msg))

    def kick(self, client, reason=None):
        """Disconnects a client; ``reason`` goes to it as the error frame's
        message."""
        client = _check_int("client", client, _lib.UINT64_MAX)
        raw_reason = None if reason is None else _text_arg("reason", reason)
        self._call(_lib.kick, client, raw_reason)

    def notice(self, client, text):
        """Sends one client (connected, or a parked session) what the host
        says itself: {"type":"notice","text":text}. No client can send a
        notice, so none can pose as the host."""
        client = _check_int("client", client, _lib.UINT64_MAX)
        self._call(_lib.notice, client, _text_arg("text", text))

    def notice_all(self, text):
        """Sends every registered client (parked sessions included) the
        notice {"type":"notice","text":text}; returns how many it was
        queued to."""
        return self._call(_lib.notice_all, _text_arg("text", text))

    def set_user_data(self, client, data):
        """Attaches an int (0 to 2**64-1) of the host's choosing to a client:
        every later event of that client carries it as ``user_data``
        (events already waiting keep the value they were made with)."""
        client = _check_int("client", client, _lib.UINT64_MAX)
        data = _check_int("data", data, _lib.UINT64_MAX)
        self._call(_lib.set_user_data, client, data)

    def shutdown(self, deadline=2.0):
        """Graceful end: everyone is told (error shutdown, presence offline),
        queues are flushed, and connections close; pumps until all are
        closed or ``deadline`` seconds passed. Returns the events seen
        meanwhile. The server stays open (close() it afterwards)."""
        deadline_ms = _timeout_ms(deadline)
        # The library closes what is left at its deadline; the second of
        # grace only keeps a library bug from hanging the host here.
        give_up = time.monotonic() + deadline_ms / 1000.0
        events = []
        while not self._call(_lib.shutdown, deadline_ms) and time.monotonic() < give_up + 1.0:
            left = max(give_up - time.monotonic(), 0.001)
            events.extend(self.poll(left))
        return events + self.poll(0)

    def stats(self):
        """The counters now."""
        return Stats(**self._call(_lib.stats))

    # -- rooms --------------------------------------------------------------

    def room_send(self, room, msg):
        """Queues one JSON object (dict, str or bytes), as given, to every
        member of ``room`` ("#name", any case); returns how many it was
        queued to."""
        raw_room = _text_arg("room", room)
        return self._call(_lib.room_send, raw_room, _payload(msg))

    def room_members(self, room):
        """The ids of a room's members, in joining order."""
        return self._call(_lib.room_members, _text_arg("room", room))

    def room_remove(self, client, room):
        """Takes a client out of a room: it gets ``parted``, the other
        members see it part, and a Parted event follows."""
        client = _check_int("client", client, _lib.UINT64_MAX)
        self._call(_lib.room_remove, client, _text_arg("room", room))

    # -- host authority -------------------------------------------------------

    def approve(self, client):
        """With approve_registrations: lets in a client whose Approval event
        arrived (it gets its welcome; a Registered event follows)."""
        client = _check_int("client", client, _lib.UINT64_MAX)
        self._call(_lib.approve, client)

    def reject(self, client, message=None):
        """With approve_registrations: refuses a client's hello; it gets
        error ``rejected`` (with ``message`` unless None) and may try
        again."""
        client = _check_int("client", client, _lib.UINT64_MAX)
        self._call(_lib.reject, client, _optional_text("message", message))

    def release(self, ticket):
        """With intercept_messages: routes the message of an Intercepted
        event as if it had just arrived. Releasing in ticket order keeps
        each sender's order."""
        ticket = _check_int("ticket", ticket, _lib.UINT64_MAX)
        self._call(_lib.release, ticket)

    def drop(self, ticket, code="dropped", message=None):
        """With intercept_messages: discards the message of an Intercepted
        event; its sender gets error ``code`` (with ``message`` unless
        None)."""
        ticket = _check_int("ticket", ticket, _lib.UINT64_MAX)
        self._call(_lib.drop, ticket, _optional_text("code", code), _optional_text("message", message))

    def __repr__(self):
        try:
            return "<chat.Server port=%d>" % self.port
        except (ChatError, RuntimeError):
            return "<chat.Server closed>" if self._handle is None else "<chat.Server>"
