"""Protocol 1.2 through chat.Server over real sockets: host notices
(notice, notice_all), renames (Renamed), resumable sessions (Parked,
Resumed, the session counters of stats) and the errors of those calls."""

import unittest

from helpers import ChatTestCase, chat


class NoticeTest(ChatTestCase):
    def test_notices_reach_one_client_or_everyone(self):
        h = self.start()
        (alice, a), (bob, _) = h.users("alice", "bob")
        h.server.notice(a, "just you")
        self.assertEqual(h.server.notice_all("everyone: 😀"), 2)
        self.assertEqual(
            h.barrier(alice, 1),
            [{"type": "notice", "text": "just you"}, {"type": "notice", "text": "everyone: 😀"}],
        )
        self.assertEqual(h.barrier(bob, 1), [{"type": "notice", "text": "everyone: 😀"}])
        # A client cannot send one.
        bob.send({"type": "notice", "text": "I am the host"})
        self.assertEqual(h.frame(bob)["code"], "unknown_type")
        self.assertEqual(h.barrier(alice, 2), [])

    def test_bad_notice_arguments(self):
        h = self.start()
        s = h.server
        with self.assertRaises(chat.ChatError) as e:
            s.notice(987654321, "x")
        self.assertEqual(e.exception.code, chat.ERR_UNKNOWN_CLIENT)
        with self.assertRaises(TypeError):
            s.notice_all(b"bytes")
        with self.assertRaises(ValueError):
            s.notice_all("nul\0inside")
        with self.assertRaises(chat.ChatError) as e:
            s.notice_all("x" * 70000)
        self.assertEqual(e.exception.code, chat.ERR_TOO_LARGE)
        self.assertEqual(s.notice_all("nobody here"), 0)


class RenameTest(ChatTestCase):
    def test_a_rename_is_an_event_with_both_nicks(self):
        h = self.start()
        (alice, a), (bob, _) = h.users("alice", "bob")
        h.events.clear()
        alice.send({"type": "nick", "nick": "alicia"})
        self.assertEqual(h.frame(alice), {"type": "nick", "nick": "alicia", "old": "alice"})
        self.assertEqual(h.frame(bob), {"type": "presence", "nick": "alicia", "old": "alice", "state": "renamed"})
        ev = h.event(chat.Renamed)
        self.assertEqual((ev.client, ev.nick, ev.old_nick), (a, "alicia", "alice"))


class SessionTest(ChatTestCase):
    def test_a_session_parks_and_resumes_on_a_new_id(self):
        h = self.start(resume_window_ms=60000)
        (bob, _), = h.users("bob")
        alice = h.connect()
        alice.send({"type": "hello", "nick": "alice", "resumable": True})
        welcome = h.frame(alice)
        token = welcome["session"]
        a = h.event(chat.Registered, nick="alice").client
        self.assertEqual(h.frame(bob)["state"], "online")
        h.server.set_user_data(a, 5)
        alice.close()
        parked = h.event(chat.Parked)
        self.assertEqual((parked.client, parked.reason, parked.user_data), (a, "disconnect", 5))
        h.server.notice(a, "while away")
        stats = h.server.stats()
        self.assertEqual((stats.parked, stats.resumed), (1, 0))
        self.assertGreater(stats.retained_bytes, 0)
        again = h.connect()
        again.send({"type": "hello", "nick": "alice", "resume": {"session": token, "received": 0}})
        welcome = h.frame(again)
        self.assertTrue(welcome["resumed"])
        self.assertNotEqual(welcome["session"], token)
        self.assertEqual(h.frame(again), {"type": "notice", "text": "while away"})
        resumed = h.event(chat.Resumed)
        self.assertEqual((resumed.previous, resumed.nick, resumed.user_data), (a, "alice", 5))
        self.assertNotEqual(resumed.client, a)
        with self.assertRaises(chat.ChatError) as e:
            h.server.notice(a, "old id")
        self.assertEqual(e.exception.code, chat.ERR_UNKNOWN_CLIENT)
        stats = h.server.stats()
        self.assertEqual((stats.parked, stats.resumed, stats.resume_failed), (0, 1, 0))
        # Nobody was told anything.
        self.assertEqual(h.barrier(bob, 1), [])


if __name__ == "__main__":
    unittest.main()
