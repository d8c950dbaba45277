"""Host authority through chat.Server over real sockets: approval of
registrations (approve, reject, the deadline), interception of messages
(release, drop), user data in every event, and the error codes of those
calls."""

import unittest

from helpers import ChatTestCase, chat

WAITING = {"type": "error", "code": "not_registered", "message": "waiting for the host to approve"}


def ask(h, nick, token=None):
    """Connects and sends hello (with `token` unless None); returns the
    socket and the Approval event."""
    c = h.connect()
    hello = {"type": "hello", "nick": nick}
    if token is not None:
        hello["token"] = token
    c.send(hello)
    return c, h.event(chat.Approval, nick=nick)


class ApprovalTest(ChatTestCase):
    def test_approve_lets_a_waiting_client_in(self):
        h = self.start(approve_registrations=True)
        s = h.server
        c = h.connect()
        conn = h.event(chat.Connected)
        s.set_user_data(conn.client, 7)
        c.send({"type": "hello", "nick": "alice", "token": "s3cret \u00e9"})
        ev = h.event(chat.Approval)
        self.assertEqual(
            (ev.client, ev.nick, ev.token, ev.user_data, ev.peer),
            (conn.client, "alice", "s3cret \u00e9", 7, c.addr),
        )
        # Registered to nobody meanwhile: its other frames are refused.
        c.send({"type": "ping", "id": 1})
        self.assertEqual(h.frame(c), WAITING)
        # The nick is reserved while it waits.
        other = h.connect()
        other.send({"type": "hello", "nick": "ALICE"})
        self.assertEqual(h.frame(other)["code"], "nick_taken")

        s.set_user_data(conn.client, 8)
        s.approve(conn.client)
        self.assertEqual(h.frame(c), {"type": "welcome", "nick": "alice", "users": ["alice"]})
        reg = h.event(chat.Registered)
        self.assertEqual((reg.client, reg.nick, reg.user_data), (conn.client, "alice", 8))
        c.send({"type": "ping", "id": 2})
        self.assertEqual(h.frame(c), {"type": "pong", "id": 2})

        self.assertChatError(chat.ERR_NOT_PENDING, s.approve, conn.client)
        self.assertChatError(chat.ERR_NOT_PENDING, s.reject, conn.client, "too late")

        # A hello without a token; the others see it come online once let in.
        bob, ev = ask(h, "bob")
        self.assertIsNone(ev.token)
        self.assertEqual(ev.user_data, 0)
        s.approve(ev.client)
        self.assertEqual(h.frame(bob)["type"], "welcome")
        self.assertEqual(h.frame(c), {"type": "presence", "nick": "bob", "state": "online"})

    def test_reject_tells_the_client_who_may_try_again(self):
        h = self.start(approve_registrations=True)
        s = h.server
        c, ev = ask(h, "alice", "wrong")
        s.reject(ev.client, "unknown token")
        self.assertEqual(h.frame(c), {"type": "error", "code": "rejected", "message": "unknown token"})
        self.assertFalse([e for e in h.events if isinstance(e, chat.Registered)])
        self.assertChatError(chat.ERR_NOT_PENDING, s.reject, ev.client)

        c.send({"type": "hello", "nick": "alice", "token": "again"})
        again = h.event(chat.Approval)
        self.assertEqual((again.client, again.token), (ev.client, "again"))
        s.reject(again.client)  # no message: none in the frame
        self.assertEqual(h.frame(c), {"type": "error", "code": "rejected"})

        c.send({"type": "hello", "nick": "alice", "token": "right"})
        s.approve(h.event(chat.Approval).client)
        self.assertEqual(h.frame(c)["type"], "welcome")
        self.assertEqual(h.event(chat.Registered).client, ev.client)

    def test_a_hello_nobody_answers_is_rejected_at_the_deadline(self):
        h = self.start(approve_registrations=True, approval_timeout_ms=50)
        s = h.server
        c, ev = ask(h, "alice")
        # The harness waits as long as server.timeout() says: no sleep.
        self.assertEqual(
            h.frame(c),
            {"type": "error", "code": "rejected", "message": "the host did not answer in time"},
        )
        self.assertChatError(chat.ERR_NOT_PENDING, s.approve, ev.client)
        # Still connected, and the nick is free again.
        c.send({"type": "hello", "nick": "alice"})
        s.approve(h.event(chat.Approval).client)
        self.assertEqual(h.frame(c)["type"], "welcome")

    def test_approval_errors(self):
        h = self.start(approve_registrations=True)
        s = h.server
        c, ev = ask(h, "alice")
        for unknown in (0, ev.client + 1000, 2**64 - 1):
            self.assertChatError(chat.ERR_UNKNOWN_CLIENT, s.approve, unknown)
            self.assertChatError(chat.ERR_UNKNOWN_CLIENT, s.reject, unknown, "no")
        # A client that never sent hello is not waiting.
        h.events.clear()
        h.connect()
        fresh = h.event(chat.Connected)
        self.assertChatError(chat.ERR_NOT_PENDING, s.approve, fresh.client)
        for bad in ("1", 1.0, True, None):
            with self.assertRaises(TypeError):
                s.approve(bad)
            with self.assertRaises(TypeError):
                s.reject(bad)
        with self.assertRaises(TypeError):
            s.reject(ev.client, 5)
        with self.assertRaises(ValueError):
            s.reject(ev.client, "a\0b")
        # None of that answered alice.
        c.send({"type": "ping", "id": 1})
        self.assertEqual(h.frame(c), WAITING)

    def test_without_approval_nobody_is_pending(self):
        h = self.start()
        (_, a), = h.users("alice")
        self.assertChatError(chat.ERR_NOT_PENDING, h.server.approve, a)
        self.assertChatError(chat.ERR_NOT_PENDING, h.server.reject, a)


class InterceptionTest(ChatTestCase):
    def hold(self, h, sender, frame):
        """Sends `frame` and returns its Intercepted event."""
        sender.send(frame)
        return h.event(chat.Intercepted)

    def test_release_routes_a_held_message_as_if_it_had_just_arrived(self):
        h = self.start(intercept_messages=True)
        s = h.server
        (alice, a), (bob, b) = h.users("alice", "bob")
        s.set_user_data(a, 5)
        sent = {"type": "msg", "to": "bob", "text": "hi \u00e9", "id": [1, "x"]}
        held = self.hold(h, alice, sent)
        self.assertEqual((held.client, held.nick, held.user_data, held.peer), (a, "alice", 5, alice.addr))
        self.assertIsInstance(held.payload, str)
        self.assertEqual(held.json(), sent)
        self.assertGreater(held.ticket, 0)
        self.assertEqual(h.barrier(bob, 0), [])
        self.assertEqual(h.barrier(alice, 0), [])

        s.release(held.ticket)
        delivered = {"type": "msg", "from": "alice", "to": "bob", "text": "hi \u00e9"}
        self.assertEqual(h.frame(bob), delivered)
        self.assertEqual(h.frame(alice), {"type": "ack", "id": [1, "x"], "queued": 1})
        msg = h.event(chat.Message)
        self.assertEqual((msg.client, msg.json(), msg.recipients, msg.user_data), (a, delivered, 1, 5))
        self.assertChatError(chat.ERR_UNKNOWN_TICKET, s.release, held.ticket)
        self.assertChatError(chat.ERR_UNKNOWN_TICKET, s.drop, held.ticket)

        # Released in ticket order, a sender's messages keep their order.
        first = self.hold(h, alice, {"type": "all", "text": "one"})
        second = self.hold(h, alice, {"type": "all", "text": "two"})
        self.assertLess(first.ticket, second.ticket)
        s.release(first.ticket)
        s.release(second.ticket)
        self.assertEqual(h.frame(bob), {"type": "all", "from": "alice", "text": "one"})
        self.assertEqual(h.frame(bob), {"type": "all", "from": "alice", "text": "two"})

        # Room messages are held too.
        for c in (alice, bob):
            c.send({"type": "join", "room": "#r"})
            self.assertEqual(h.frame(c)["type"], "joined")
        held = self.hold(h, alice, {"type": "room", "room": "#r", "text": "in the room"})
        self.assertEqual(held.json()["type"], "room")
        self.assertEqual(h.barrier(bob, 1), [])
        s.release(held.ticket)
        self.assertEqual(h.frame(bob), {"type": "room", "room": "#r", "from": "alice", "text": "in the room"})

    def test_drop_answers_the_sender_and_routes_nothing(self):
        h = self.start(intercept_messages=True)
        s = h.server
        (alice, a), (bob, b) = h.users("alice", "bob")

        held = self.hold(h, alice, {"type": "all", "text": "spam", "id": 3})
        s.drop(held.ticket)
        self.assertEqual(h.barrier(alice, 0), [{"type": "error", "code": "dropped"}])
        self.assertEqual(h.barrier(bob, 0), [])
        self.assertChatError(chat.ERR_UNKNOWN_TICKET, s.drop, held.ticket)
        self.assertChatError(chat.ERR_UNKNOWN_TICKET, s.release, held.ticket)

        held = self.hold(h, alice, {"type": "msg", "to": "bob", "text": "rude"})
        s.drop(held.ticket, code="moderated", message="message blocked: bad word")
        self.assertEqual(
            h.barrier(alice, 1),
            [{"type": "error", "code": "moderated", "message": "message blocked: bad word"}],
        )
        self.assertEqual(h.barrier(bob, 1), [])
        # code=None is the library's default, "dropped".
        held = self.hold(h, alice, {"type": "all", "text": "x"})
        s.drop(held.ticket, code=None)
        self.assertEqual(h.barrier(alice, 2), [{"type": "error", "code": "dropped"}])
        self.assertFalse([e for e in h.events if isinstance(e, chat.Message)], h.events)

        # A refused drop leaves the message held.
        held = self.hold(h, alice, {"type": "all", "text": "kept"})
        self.assertChatError(chat.ERR_INVALID, s.drop, held.ticket, code="")
        for bad in ("1", 1.5, True, None):
            with self.assertRaises(TypeError):
                s.release(bad)
            with self.assertRaises(TypeError):
                s.drop(bad)
        with self.assertRaises(ValueError):
            s.release(-1)
        with self.assertRaises(TypeError):
            s.drop(held.ticket, code=5)
        with self.assertRaises(ValueError):
            s.drop(held.ticket, message="a\0b")
        s.release(held.ticket)
        self.assertEqual(h.frame(bob), {"type": "all", "from": "alice", "text": "kept"})

    def test_held_messages_leave_with_their_sender(self):
        h = self.start(intercept_messages=True)
        (alice, a), (bob, _) = h.users("alice", "bob")
        held = self.hold(h, alice, {"type": "all", "text": "bye"})
        alice.send({"type": "quit"})
        h.closed(alice)
        h.event(chat.Disconnected, client=a)
        self.assertChatError(chat.ERR_UNKNOWN_TICKET, h.server.release, held.ticket)
        offline = {"type": "presence", "nick": "alice", "state": "offline", "reason": "quit"}
        self.assertEqual(h.barrier(bob, 0), [offline])

    def test_unknown_tickets(self):
        h = self.start(intercept_messages=True)
        for ticket in (0, 1, 2**64 - 1):
            self.assertChatError(chat.ERR_UNKNOWN_TICKET, h.server.release, ticket)
            self.assertChatError(chat.ERR_UNKNOWN_TICKET, h.server.drop, ticket, "x", "y")


class UserDataTest(ChatTestCase):
    def test_user_data_round_trips_through_every_event(self):
        h = self.start()
        s = h.server
        (bob, _), = h.users("bob")
        c = h.connect()
        conn = h.event(chat.Connected)
        self.assertEqual(conn.user_data, 0)
        big = 2**64 - 1
        s.set_user_data(conn.client, big)
        c.send({"type": "hello", "nick": "alice"})
        self.assertEqual(h.frame(c)["type"], "welcome")
        self.assertEqual(h.event(chat.Registered, client=conn.client).user_data, big)
        c.send({"type": "join", "room": "#r"})
        self.assertEqual(h.frame(c)["type"], "joined")
        self.assertEqual(h.event(chat.Joined, client=conn.client).user_data, big)

        # A new value shows in every later event.
        s.set_user_data(conn.client, 1234)
        c.send({"type": "msg", "to": "bob", "text": "hi"})
        self.assertEqual(h.event(chat.Message, client=conn.client).user_data, 1234)
        # Routed, so already queued to bob.
        self.assertEqual(
            h.barrier(bob, 0),
            [
                {"type": "presence", "nick": "alice", "state": "online"},
                {"type": "msg", "from": "alice", "to": "bob", "text": "hi"},
            ],
        )
        c.send({"type": "part", "room": "#r"})
        self.assertEqual(h.frame(c)["type"], "parted")
        self.assertEqual(h.event(chat.Parted, client=conn.client).user_data, 1234)
        s.set_user_data(conn.client, 0)
        c.send({"type": "quit"})
        h.closed(c)
        gone = h.event(chat.Disconnected, client=conn.client)
        self.assertEqual((gone.user_data, gone.reason), (0, "quit"))
        # Clients keep their own: bob's events still carry 0.
        bob.send({"type": "all", "text": "x"})
        self.assertEqual(h.event(chat.Message).user_data, 0)

        self.assertChatError(chat.ERR_UNKNOWN_CLIENT, s.set_user_data, conn.client, 1)
        for bad in ("1", 1.5, True, None):
            with self.assertRaises(TypeError):
                s.set_user_data(conn.client, bad)
        for bad in (-1, 2**64):
            with self.assertRaises(ValueError):
                s.set_user_data(conn.client, bad)


class ShuttingDownTest(ChatTestCase):
    def test_calls_that_give_work_are_refused_once_shutdown_began(self):
        h = self.start(approve_registrations=True, intercept_messages=True)
        s = h.server
        s.shutdown(deadline=1.0)
        for call in (
            lambda: s.room_send("#r", {"type": "x"}),
            lambda: s.room_remove(1, "#r"),
            lambda: s.approve(1),
            lambda: s.reject(1, "no"),
            lambda: s.release(1),
            lambda: s.drop(1, "moderated", "no"),
        ):
            self.assertChatError(chat.ERR_SHUTTING_DOWN, call)


if __name__ == "__main__":
    unittest.main()
