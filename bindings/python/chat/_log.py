"""The library's log records as Python `logging` records: the level
mapping both ways, and the C callback that hands each record of one server
to a logger (by default `logging.getLogger("chat")`).

The callback runs on the thread that pumps the server, inside the library
call that logged (Server.poll, say), so a record arrives in order with the
events around it. It never raises into C: a failing handler is logging's own
business (logging.raiseExceptions), and anything else is dropped.
"""

import logging

from . import _lib

#: logging's level for the library's TRACE (below DEBUG), named "TRACE"
#: unless the program named level 5 already.
TRACE = 5
if logging.getLevelName(TRACE) == "Level %d" % TRACE:
    logging.addLevelName(TRACE, "TRACE")

_TO_PYTHON = {
    _lib.LOG_ERROR: logging.ERROR,
    _lib.LOG_WARN: logging.WARNING,
    _lib.LOG_INFO: logging.INFO,
    _lib.LOG_DEBUG: logging.DEBUG,
    _lib.LOG_TRACE: TRACE,
}


def python_level(level):
    """The logging level of a library record (CHAT_LOG_ERROR .. TRACE)."""
    return _TO_PYTHON.get(level, logging.DEBUG)


def library_level(level):
    """The library's max_level that lets through every record a logger at
    ``level`` would take: CHAT_LOG_OFF above ERROR."""
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError("level must be a logging level (an int), not %s" % type(level).__name__)
    for c_level in (_lib.LOG_TRACE, _lib.LOG_DEBUG, _lib.LOG_INFO, _lib.LOG_WARN, _lib.LOG_ERROR):
        if level <= _TO_PYTHON[c_level]:
            return c_level
    return _lib.LOG_OFF


def callback(logger):
    """A ChatLogFn that logs each record to ``logger``."""

    def on_record(_user, level, message):
        try:
            logger.log(python_level(level), message.decode("utf-8", "replace"))
        except Exception:  # noqa: BLE001 (nothing may unwind into C)
            pass

    return _lib.ChatLogFn(on_record)
