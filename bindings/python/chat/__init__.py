"""Python binding of libchat, the embeddable chat server (through ctypes).

    import chat
    with chat.Server("127.0.0.1:0") as server:
        print("port", server.port)
        while True:
            for event in server.poll(1.0):
                if isinstance(event, chat.Registered):
                    server.send(event.client, {"type": "banner", "text": "hi " + event.nick})

The library is $CHAT_LIB if set, else the one bundled by `pip install
./bindings/python`, else a build in $CARGO_TARGET_DIR or the nearest
target/{release,debug} above this package, else the system's libchat.so.MAJOR
(`make install`); it must be this package's version (see chat/_loader.py).
"""

from . import _cargo, _lib
from .errors import (
    ERR_ADDR,
    ERR_BIND,
    ERR_CONFIG,
    ERR_FD_SETSIZE,
    ERR_INVALID,
    ERR_IO,
    ERR_NOT_JSON_OBJECT,
    ERR_NOT_IN_ROOM,
    ERR_NOT_PENDING,
    ERR_NULL,
    ERR_PANIC,
    ERR_SHUTTING_DOWN,
    ERR_TOO_LARGE,
    ERR_UNKNOWN_CLIENT,
    ERR_UNKNOWN_ROOM,
    ERR_UNKNOWN_TICKET,
    ERR_UTF8,
    OK,
    ChatError,
    LibraryNotFoundError,
    LibraryVersionError,
)
from .events import (
    REASONS,
    Approval,
    Connected,
    Disconnected,
    Event,
    Intercepted,
    Joined,
    Message,
    Parked,
    Parted,
    Registered,
    Renamed,
    Resumed,
    Stats,
)
from .server import Server

#: This package's version, which is the crate's (Cargo.toml); the library
#: loaded must report the same from chat_version().
__version__ = _cargo.package_version()


def version():
    """The library's version ("0.1.0")."""
    return _lib.version()


def strerror(code):
    """The library's static text for an ERR_* code."""
    return _lib.strerror(code)


def library_path():
    """The path of the loaded libchat."""
    return _lib.library_path()


__all__ = [
    "ERR_ADDR",
    "ERR_BIND",
    "ERR_CONFIG",
    "ERR_FD_SETSIZE",
    "ERR_INVALID",
    "ERR_IO",
    "ERR_NOT_JSON_OBJECT",
    "ERR_NOT_IN_ROOM",
    "ERR_NOT_PENDING",
    "ERR_NULL",
    "ERR_PANIC",
    "ERR_SHUTTING_DOWN",
    "ERR_TOO_LARGE",
    "ERR_UNKNOWN_CLIENT",
    "ERR_UNKNOWN_ROOM",
    "ERR_UNKNOWN_TICKET",
    "ERR_UTF8",
    "OK",
    "REASONS",
    "Approval",
    "ChatError",
    "Connected",
    "Disconnected",
    "Event",
    "Intercepted",
    "Joined",
    "LibraryNotFoundError",
    "LibraryVersionError",
    "Message",
    "Parked",
    "Parted",
    "Registered",
    "Renamed",
    "Resumed",
    "Server",
    "Stats",
    "library_path",
    "strerror",
    "version",
]
