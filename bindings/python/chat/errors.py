"""Error codes of the C ABI (``CHAT_ERR_*`` in include/chat.h) and ChatError."""

OK = 0
ERR_NULL = -1
ERR_INVALID = -2
ERR_UTF8 = -3
ERR_NOT_JSON_OBJECT = -4
ERR_TOO_LARGE = -5
ERR_UNKNOWN_CLIENT = -6
ERR_ADDR = -7
ERR_BIND = -8
ERR_FD_SETSIZE = -9
ERR_CONFIG = -10
ERR_IO = -11
ERR_SHUTTING_DOWN = -12
ERR_PANIC = -13
ERR_UNKNOWN_ROOM = -14
ERR_NOT_IN_ROOM = -15
ERR_UNKNOWN_TICKET = -16
ERR_NOT_PENDING = -17
ERR_TLS = -18

# The header's names, so an error can say which code it carries.
CODE_NAMES = {
    value: "CHAT_" + name
    for name, value in dict(globals()).items()
    if name.startswith("ERR_") and isinstance(value, int)
}


class ChatError(Exception):
    """A call into the library failed.

    ``code`` is one of the ``ERR_*`` constants (the C function's negative
    return), ``message`` the library's text for this failure.
    """

    def __init__(self, code, message):
        super().__init__(code, message)
        self.code = code
        self.message = message

    @property
    def name(self):
        """The header's name for ``code``, e.g. ``CHAT_ERR_TOO_LARGE``."""
        return CODE_NAMES.get(self.code, "CHAT_ERR_UNKNOWN")

    def __str__(self):
        return "%s (%d): %s" % (self.name, self.code, self.message)


class LibraryNotFoundError(OSError):
    """libchat could not be found; the message lists every place tried."""


class LibraryVersionError(LibraryNotFoundError):
    """The libchat found is not the version of this package; the message
    says which library, both versions, and how to get a matching one."""
