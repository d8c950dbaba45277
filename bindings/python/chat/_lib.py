"""The only module that calls into libchat through ctypes (_loader finds
and loads it): declares every function's argtypes and restype, mirrors the
header's structs, and wraps each call so that callers get Python values and
ChatError, never raw pointers.

Strings in a ChatEvent are only valid until the next call on the same server,
so next_event copies every one of them out before returning; so do the
lookups. A log callback must not raise into C: the caller wraps it.
"""

import ctypes
import threading
from ctypes import (
    POINTER,
    Structure,
    CFUNCTYPE,
    c_char_p,
    c_int,
    c_int16,
    c_int32,
    c_int64,
    c_size_t,
    c_uint16,
    c_uint32,
    c_uint64,
    c_uint8,
    c_void_p,
)

from . import _loader
from ._loader import find_library, library_filename  # noqa: F401 (the tests use them from here)
from .errors import ERR_NULL, ERR_UNKNOWN_CLIENT, ChatError, LibraryNotFoundError

POLL_READ = 1
POLL_WRITE = 2

EVENT_CONNECTED = 1
EVENT_REGISTERED = 2
EVENT_MESSAGE = 3
EVENT_DISCONNECTED = 4
EVENT_JOINED = 5
EVENT_PARTED = 6
EVENT_APPROVAL = 7
EVENT_INTERCEPTED = 8
EVENT_RENAMED = 9
EVENT_RESUMED = 10
EVENT_PARKED = 11

LOG_OFF = 0
LOG_ERROR = 1
LOG_WARN = 2
LOG_INFO = 3
LOG_DEBUG = 4
LOG_TRACE = 5

INT32_MAX = 2**31 - 1
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1


class ChatConfig(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("listen_addr", c_char_p),
        ("max_clients", c_uint32),
        ("max_frame_bytes", c_uint32),
        ("max_queue_bytes", c_uint64),
        ("idle_timeout_ms", c_uint32),
        ("max_events", c_uint32),
        # Appended for limits, rooms and host authority. chat_config_default
        # writes the whole struct of the header, so every field must be here.
        ("handshake_timeout_ms", c_uint32),
        ("max_per_ip", c_uint32),
        ("rate_limit_frames", c_uint32),
        ("rate_limit_grace_ms", c_uint32),
        ("rate_limit_bytes", c_uint64),
        ("max_rooms_per_client", c_uint32),
        ("max_members_per_room", c_uint32),
        ("max_rooms", c_uint32),
        ("approve_registrations", c_uint32),
        ("approval_timeout_ms", c_uint32),
        ("intercept_messages", c_uint32),
        # Appended in 1.2: TLS, WebSocket, the cluster, resumable sessions.
        ("tls_cert_pem", c_char_p),
        ("tls_cert_len", c_size_t),
        ("tls_key_pem", c_char_p),
        ("tls_key_len", c_size_t),
        ("ws_listen_addr", c_char_p),
        ("ws_path", c_char_p),
        ("ws_allowed_origins", c_char_p),
        ("redis_url", c_char_p),
        ("cluster_name", c_char_p),
        ("node_timeout_ms", c_uint32),
        ("reuse_port", c_uint8),
        ("resume_window_ms", c_uint32),
        ("resume_retain_bytes", c_uint64),
    ]


class ChatPollFd(Structure):
    _fields_ = [("fd", c_int), ("events", c_int16)]


class ChatEvent(Structure):
    _fields_ = [
        # Set to sizeof(ChatEvent) before each call: the library writes only
        # what it covers, so a newer library never overruns this struct.
        ("struct_size", c_uint32),
        ("kind", c_uint32),
        ("client", c_uint64),
        ("peer", c_char_p),
        ("nick", c_char_p),
        # uint8_t *: not c_char_p, which would stop at the first NUL.
        ("payload", c_void_p),
        ("payload_len", c_size_t),
        ("reason", c_char_p),
        ("recipients", c_uint32),
        # Appended for rooms and host authority (the library fills the
        # whole struct, so these must be here even if unused).
        ("room", c_char_p),
        ("ticket", c_uint64),
        ("token", c_char_p),
        ("user_data", c_uint64),
        # Appended in 1.2: renames and resumed sessions.
        ("old_nick", c_char_p),
        ("previous", c_uint64),
    ]


STATS_FIELDS = (
    "clients",
    "registered",
    "accepted",
    "refused",
    "frames_in",
    "frames_out",
    "bytes_in",
    "bytes_out",
    "queued_bytes",
    "peak_queued_bytes",
    "disconnects_quit",
    "disconnects_disconnect",
    "disconnects_slow_consumer",
    "disconnects_timeout",
    "disconnects_protocol_error",
    "disconnects_kicked",
    "disconnects_shutdown",
    # Appended in 1.2.
    "failed_handshakes",
    # Appended in 1.2: resumable sessions.
    "parked",
    "resumed",
    "resume_failed",
    "retained_bytes",
    # Appended in 1.2: closed connections still being drained.
    "draining",
    "drained_bytes",
    # Appended in 1.2: the cluster (cluster_state 0 off, 1 down, 2 up).
    "cluster_state",
    "cluster_nodes",
    "cluster_users",
    "cluster_relayed_out",
    "cluster_relayed_in",
    "cluster_relay_failed",
    "cluster_reconnects",
)


class ChatStats(Structure):
    _fields_ = [("struct_size", c_uint32)] + [(name, c_uint64) for name in STATS_FIELDS]


# typedef void (*ChatLogFn)(void *user, int level, const char *message)
ChatLogFn = CFUNCTYPE(None, c_void_p, c_int, c_char_p)

# (name, argtypes, restype) for every function of include/chat.h.
_PROTOTYPES = [
    ("chat_config_default", [POINTER(ChatConfig)], None),
    ("chat_config_init", [POINTER(ChatConfig), c_uint32], c_int),
    ("chat_server_new", [POINTER(ChatConfig)], c_void_p),
    ("chat_server_port", [c_void_p], c_uint16),
    ("chat_server_poll_once", [c_void_p, c_int32], c_int),
    ("chat_server_next_event", [c_void_p, POINTER(ChatEvent)], c_int),
    ("chat_server_fds", [c_void_p, POINTER(ChatPollFd), c_size_t], c_int),
    ("chat_server_timeout_ms", [c_void_p], c_int32),
    ("chat_server_wakeup", [c_void_p], c_int),
    ("chat_send", [c_void_p, c_uint64, c_char_p, c_size_t], c_int),
    ("chat_broadcast", [c_void_p, c_char_p, c_size_t], c_int),
    ("chat_kick", [c_void_p, c_uint64, c_char_p], c_int),
    ("chat_server_shutdown", [c_void_p, c_int32], c_int),
    ("chat_server_stats", [c_void_p, POINTER(ChatStats)], c_int),
    ("chat_server_free", [c_void_p], None),
    ("chat_last_error", [], c_char_p),
    ("chat_last_error_code", [], c_int),
    ("chat_strerror", [c_int], c_char_p),
    ("chat_version", [], c_char_p),
    ("chat_room_send", [c_void_p, c_char_p, c_char_p, c_size_t], c_int),
    ("chat_room_members", [c_void_p, c_char_p, POINTER(c_uint64), c_size_t], c_int),
    ("chat_room_remove", [c_void_p, c_uint64, c_char_p], c_int),
    ("chat_approve", [c_void_p, c_uint64], c_int),
    ("chat_reject", [c_void_p, c_uint64, c_char_p], c_int),
    ("chat_release", [c_void_p, c_uint64], c_int),
    ("chat_drop", [c_void_p, c_uint64, c_char_p, c_char_p], c_int),
    ("chat_set_user_data", [c_void_p, c_uint64, c_uint64], c_int),
    ("chat_notice", [c_void_p, c_uint64, c_char_p], c_int),
    ("chat_notice_all", [c_void_p, c_char_p], c_int),
    ("chat_server_set_log", [c_void_p, c_int, ChatLogFn, c_void_p], c_int),
    ("chat_find_client", [c_void_p, c_char_p], c_int64),
    ("chat_client_nick", [c_void_p, c_uint64], c_char_p),
    ("chat_client_peer", [c_void_p, c_uint64], c_char_p),
    ("chat_server_local_addr", [c_void_p], c_char_p),
    ("chat_server_ws_addr", [c_void_p], c_char_p),
]


_loaded = None
_load_lock = threading.Lock()


def lib():
    """The loaded library with every prototype declared (loaded once)."""
    global _loaded
    if _loaded is None:
        with _load_lock:
            if _loaded is None:
                cdll, path = _loader.load()
                for name, argtypes, restype in _PROTOTYPES:
                    try:
                        fn = getattr(cdll, name)
                    except AttributeError:
                        raise LibraryNotFoundError(
                            "%s does not export %s: a build older than this binding? "
                            "Rebuild it with `cargo build`, or set CHAT_LIB" % (path, name)
                        ) from None
                    fn.argtypes = argtypes
                    fn.restype = restype
                cdll.chat_path = path
                _loaded = cdll
    return _loaded


def _text(raw):
    return raw.decode("utf-8", "replace") if raw is not None else None


def _error(code):
    """ChatError for a failure just returned on this thread."""
    message = _text(lib().chat_last_error()) or _text(lib().chat_strerror(code))
    return ChatError(code, message)


def _check(rc):
    if rc < 0:
        raise _error(rc)
    return rc


def strerror(code):
    return _text(lib().chat_strerror(code))


def version():
    return _text(lib().chat_version())


def library_path():
    return lib().chat_path


def server_new(listen, limits):
    """A new server handle (an int). listen: bytes; limits: ChatConfig field
    name -> int, already range-checked."""
    cfg = ChatConfig()
    lib().chat_config_default(ctypes.byref(cfg))
    cfg.struct_size = ctypes.sizeof(ChatConfig)
    # The struct keeps a reference to the bytes, so the pointer stays valid
    # for the call.
    cfg.listen_addr = listen
    for name, value in limits.items():
        setattr(cfg, name, value)
    handle = lib().chat_server_new(ctypes.byref(cfg))
    if not handle:
        code = lib().chat_last_error_code()
        raise _error(code if code < 0 else ERR_NULL)
    return handle


def server_free(handle):
    lib().chat_server_free(handle)


def port(handle):
    return lib().chat_server_port(handle)


def poll_once(handle, timeout_ms):
    return _check(lib().chat_server_poll_once(handle, timeout_ms))


def next_event(handle):
    """The next event as a dict of plain Python values (every string copied
    out), or None when none waits."""
    ev = ChatEvent()
    ev.struct_size = ctypes.sizeof(ChatEvent)
    if _check(lib().chat_server_next_event(handle, ctypes.byref(ev))) == 0:
        return None
    payload = None
    if ev.payload:
        payload = ctypes.string_at(ev.payload, ev.payload_len).decode("utf-8", "replace")
    return {
        "kind": ev.kind,
        "client": ev.client,
        "peer": _text(ev.peer),
        "nick": _text(ev.nick),
        "payload": payload,
        "reason": _text(ev.reason),
        "recipients": ev.recipients,
        "room": _text(ev.room),
        "ticket": ev.ticket,
        "token": _text(ev.token),
        "user_data": ev.user_data,
        "old_nick": _text(ev.old_nick),
        "previous": ev.previous,
    }


def fds(handle):
    """[(fd, readable?, writable?)] the server wants watched now."""
    cap = 8
    while True:
        out = (ChatPollFd * cap)()
        n = _check(lib().chat_server_fds(handle, out, cap))
        if n <= cap:
            return [(p.fd, bool(p.events & POLL_READ), bool(p.events & POLL_WRITE)) for p in out[:n]]
        # The set grew past our room; ask again with enough.
        cap = n


def timeout_ms(handle):
    return lib().chat_server_timeout_ms(handle)


def wakeup(handle):
    _check(lib().chat_server_wakeup(handle))


def send(handle, client, data):
    _check(lib().chat_send(handle, client, data, len(data)))


def broadcast(handle, data):
    return _check(lib().chat_broadcast(handle, data, len(data)))


def kick(handle, client, reason):
    _check(lib().chat_kick(handle, client, reason))


def shutdown(handle, deadline_ms):
    """True once every connection is closed."""
    return _check(lib().chat_server_shutdown(handle, deadline_ms)) == 1


def stats(handle):
    out = ChatStats()
    out.struct_size = ctypes.sizeof(ChatStats)
    _check(lib().chat_server_stats(handle, ctypes.byref(out)))
    return {name: getattr(out, name) for name in STATS_FIELDS}


def room_send(handle, room, data):
    return _check(lib().chat_room_send(handle, room, data, len(data)))


def room_members(handle, room):
    """A room's member ids, in joining order."""
    cap = 16
    while True:
        out = (c_uint64 * cap)()
        n = _check(lib().chat_room_members(handle, room, out, cap))
        if n <= cap:
            return list(out[:n])
        # Members joined past our room; ask again with enough.
        cap = n


def room_remove(handle, client, room):
    _check(lib().chat_room_remove(handle, client, room))


def approve(handle, client):
    _check(lib().chat_approve(handle, client))


def reject(handle, client, message):
    _check(lib().chat_reject(handle, client, message))


def release(handle, ticket):
    _check(lib().chat_release(handle, ticket))


def drop(handle, ticket, code, message):
    _check(lib().chat_drop(handle, ticket, code, message))


def set_user_data(handle, client, data):
    _check(lib().chat_set_user_data(handle, client, data))


def notice(handle, client, text):
    _check(lib().chat_notice(handle, client, text))


def notice_all(handle, text):
    return _check(lib().chat_notice_all(handle, text))
def _text_or_raise(raw):
    """A C string the library returned, or ChatError if it returned NULL
    for an error."""
    if raw is None:
        code = lib().chat_last_error_code()
        raise _error(code if code < 0 else ERR_NULL)
    return _text(raw)


def find_client(handle, nick):
    """The registered client named nick (bytes; any case), or None."""
    rc = lib().chat_find_client(handle, nick)
    if rc == ERR_UNKNOWN_CLIENT:
        return None
    return _check(rc)


def client_peer(handle, client):
    return _text_or_raise(lib().chat_client_peer(handle, client))


def client_nick(handle, client):
    """The client's nick, or None before its hello; ChatError for an id
    that is not connected (which the address tells apart)."""
    client_peer(handle, client)
    return _text(lib().chat_client_nick(handle, client))


def local_addr(handle):
    return _text_or_raise(lib().chat_server_local_addr(handle))


def ws_addr(handle):
    """The WebSocket listener's address, or None without one."""
    return _text(lib().chat_server_ws_addr(handle))


def set_log(handle, level, callback):
    """callback: a ChatLogFn (the caller keeps it alive while set), or None
    to turn logging off."""
    # A NULL function pointer is ChatLogFn(), not None.
    _check(lib().chat_server_set_log(handle, level, callback if callback is not None else ChatLogFn(), None))
