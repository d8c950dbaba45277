"""The lookups (find_client, nick, peer, local_addr, ws_addr) and the
logging integration (Server.set_log): over real sockets on 127.0.0.1."""

import logging
import unittest

from helpers import ChatTestCase, chat


class Records(logging.Handler):
    """Keeps every record it is given."""

    def __init__(self):
        super().__init__(logging.NOTSET)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def messages(self, contains=""):
        return [r.getMessage() for r in self.records if contains in r.getMessage()]


def logger(test, name):
    """A logger of the test's own, passing everything to a Records handler
    (and not to the root's handlers)."""
    log = logging.getLogger(name)
    records = Records()
    log.addHandler(records)
    log.setLevel(1)  # every level: the server's level decides
    log.propagate = False
    test.addCleanup(log.removeHandler, records)
    return log, records


class LookupTest(ChatTestCase):
    def test_find_client_in_any_case_and_the_client_lookups(self):
        h = self.start()
        s = h.server
        ((alice, a_id),) = h.users("Alice")
        for nick in ("Alice", "alice", "ALICE"):
            self.assertEqual(s.find_client(nick), a_id)
        self.assertIsNone(s.find_client("bob"))
        self.assertEqual(s.nick(a_id), "Alice")
        self.assertEqual(s.peer(a_id), alice.addr)
        self.assertEqual(s.local_addr, "127.0.0.1:%d" % s.port)
        self.assertIsNone(s.ws_addr)

        self.assertChatError(chat.ERR_UNKNOWN_CLIENT, s.nick, 999)
        self.assertChatError(chat.ERR_UNKNOWN_CLIENT, s.peer, 999)
        with self.assertRaises(TypeError):
            s.find_client(b"alice")
        with self.assertRaises(ValueError):
            s.find_client("al\0ice")

        quiet = h.connect()
        q_id = h.event(chat.Connected).client
        self.assertIsNone(s.nick(q_id), "no nick before hello")
        self.assertEqual(s.peer(q_id), quiet.addr)

        alice.close()
        h.event(chat.Disconnected, client=a_id)
        self.assertIsNone(s.find_client("alice"), "the nick is free once its user left")
        self.assertChatError(chat.ERR_UNKNOWN_CLIENT, s.nick, a_id)

    def test_a_closed_server_refuses_lookups(self):
        s = chat.Server("127.0.0.1:0")
        s.close()
        for call in (lambda: s.local_addr, lambda: s.find_client("a"), lambda: s.nick(1)):
            with self.assertRaises(chat.ChatError):
                call()


class LoggingTest(ChatTestCase):
    def test_records_reach_the_servers_own_logger_until_unset(self):
        a, b = self.start(), self.start()
        log_a, seen_a = logger(self, "chat.test.a")
        log_b, seen_b = logger(self, "chat.test.b")
        a.server.set_log(log_a, logging.DEBUG)
        b.server.set_log(log_b, logging.DEBUG)
        first = seen_a.records[0]
        self.assertEqual(first.levelno, logging.INFO)
        self.assertIn(a.server.local_addr, first.getMessage())

        # A connection to b is a DEBUG record of b's, and only b's.
        c = b.connect()
        b.event(chat.Connected)
        a.step(0)
        (record,) = [r for r in seen_b.records if "connected from" in r.getMessage()]
        self.assertEqual(record.levelno, logging.DEBUG)
        self.assertEqual(record.name, "chat.test.b")
        self.assertIn(c.addr, record.getMessage())
        self.assertEqual(seen_a.messages("connected from"), [])

        # Unset: nothing more arrives.
        a.server.set_log(None)
        b.server.set_log(None)
        before = len(seen_a.records) + len(seen_b.records)
        a.connect()
        a.event(chat.Connected)
        c.close()
        b.event(chat.Disconnected)
        self.assertEqual(len(seen_a.records) + len(seen_b.records), before)

    def test_levels_map_both_ways(self):
        h = self.start()
        log, seen = logger(self, "chat.test.levels")
        # At WARNING, the INFO and DEBUG records are not even made.
        h.server.set_log(log, logging.WARNING)
        h.connect()
        h.event(chat.Connected)
        self.assertEqual(seen.records, [])
        # The logger's own level when none is given; a name works too.
        log.setLevel(logging.INFO)
        h.server.set_log("chat.test.levels")
        self.assertEqual([r.levelno for r in seen.records], [logging.INFO])
        self.assertEqual(logging.getLevelName(5), "TRACE")
        with self.assertRaises(TypeError):
            h.server.set_log(42)
        with self.assertRaises(TypeError):
            h.server.set_log(log, "DEBUG")

    def test_the_default_logger_is_chat(self):
        h = self.start()
        with self.assertLogs("chat", logging.DEBUG) as cm:
            h.server.set_log(level=logging.DEBUG)
            h.connect()
            h.event(chat.Connected)
        self.assertTrue(any("connected from" in line for line in cm.output), cm.output)
        h.server.set_log(None)

    def test_a_failing_handler_does_not_reach_the_library(self):
        h = self.start()
        log = logging.getLogger("chat.test.failing")
        log.propagate = False

        class Boom(logging.Handler):
            def emit(self, record):
                raise RuntimeError("boom")

            def handleError(self, record):
                raise RuntimeError("handleError")

        handler = Boom()
        log.addHandler(handler)
        self.addCleanup(log.removeHandler, handler)
        h.server.set_log(log, logging.DEBUG)
        h.connect()
        self.assertIsInstance(h.event(chat.Connected), chat.Connected)


if __name__ == "__main__":
    unittest.main()
