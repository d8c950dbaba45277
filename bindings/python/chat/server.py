"""chat.Server: one libchat server handle with a Pythonic face."""

import json
import math
import selectors
import threading
import time

from . import _lib
from .errors import ERR_NULL, ChatError
from .events import Stats, from_raw

# ChatConfig fields a caller may override, with the largest value each C
# field holds (ctypes would silently truncate a bigger one).
_LIMITS = {
    "max_clients": _lib.UINT32_MAX,
    "max_frame_bytes": _lib.UINT32_MAX,
    "max_queue_bytes": _lib.UINT64_MAX,
    "idle_timeout_ms": _lib.UINT32_MAX,
    "max_events": _lib.UINT32_MAX,
}


def _check_int(name, value, maximum):
    # bool is an int subclass, but True as a client id is a bug, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, not %s" % (name, type(value).__name__))
    if not 0 <= value <= maximum:
        raise ValueError("%s must be between 0 and %d, got %d" % (name, maximum, value))
    return value


def _text_arg(name, value):
    """UTF-8 bytes for a C string argument."""
    if not isinstance(value, str):
        raise TypeError("%s must be a str, not %s" % (name, type(value).__name__))
    if "\0" in value:
        # C would silently see only the part before the NUL.
        raise ValueError("%s must not contain NUL" % name)
    return value.encode("utf-8")


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
    one, see ``port``). Limits left as None keep the library's defaults.

    The host pumps it: ``poll()`` in a loop, or ``fds()``/``timeout()`` in
    its own selector and ``pump()`` when one is ready. Not thread-safe except
    ``wakeup()`` and ``close()``, which may be called from any thread (using
    it from two threads at once raises RuntimeError instead of crashing).
    """

    def __init__(
        self,
        listen="127.0.0.1:0",
        *,
        max_clients=None,
        max_frame_bytes=None,
        max_queue_bytes=None,
        idle_timeout_ms=None,
        max_events=None,
    ):
        self._handle = None
        self._closing = False
        # _lock is held for every library call; _wake_lock only guards the
        # handle against being freed under wakeup(), so that wakeup never
        # waits for a blocked poll. Both reentrant: a signal handler on the
        # pumping thread may call wakeup() or close().
        self._lock = threading.RLock()
        self._wake_lock = threading.RLock()
        given = {
            "max_clients": max_clients,
            "max_frame_bytes": max_frame_bytes,
            "max_queue_bytes": max_queue_bytes,
            "idle_timeout_ms": idle_timeout_ms,
            "max_events": max_events,
        }
        limits = {
            name: _check_int(name, value, _LIMITS[name]) for name, value in given.items() if value is not None
        }
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

    def __repr__(self):
        try:
            return "<chat.Server port=%d>" % self.port
        except (ChatError, RuntimeError):
            return "<chat.Server closed>" if self._handle is None else "<chat.Server>"
