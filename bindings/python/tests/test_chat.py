"""chat.Server over real sockets on 127.0.0.1: a session between two raw
clients, the host acting, selectors integration, misuse, and descriptor
leaks."""

import gc
import os
import selectors
import socket
import threading
import time
import unittest

from helpers import DEADLINE, ChatTestCase, chat


class SessionTest(ChatTestCase):
    def test_two_clients_chat_and_the_host_acts(self):
        h = self.start()
        s = h.server
        self.assertGreater(s.port, 0)
        alice = h.hello("alice")
        bob = h.hello("bob")
        self.assertEqual(h.frame(alice), {"type": "presence", "nick": "bob", "state": "online"})

        # Registered comes after Connected for each client; alice's both
        # come before bob's, because bob connected after alice's welcome.
        h.wait(lambda: len(h.events) >= 4, "four events")
        kinds = [(type(e), e.nick) for e in h.events]
        self.assertEqual(
            kinds,
            [
                (chat.Connected, None),
                (chat.Registered, "alice"),
                (chat.Connected, None),
                (chat.Registered, "bob"),
            ],
        )
        a_id, b_id = h.events[0].client, h.events[2].client
        self.assertIsInstance(a_id, int)
        self.assertNotEqual(a_id, 0)
        self.assertNotEqual(a_id, b_id)
        self.assertEqual(h.events[1].client, a_id)
        self.assertEqual(h.events[3].client, b_id)
        self.assertEqual(h.events[0].peer, alice.addr)
        self.assertEqual(h.events[1].peer, alice.addr)
        self.assertEqual(h.events[2].peer, bob.addr)
        h.events.clear()

        # Unicast: bob gets it with "from", the host sees it once.
        alice.send({"type": "msg", "to": "bob", "text": "hi bob"})
        expect = {"type": "msg", "from": "alice", "to": "bob", "text": "hi bob"}
        self.assertEqual(h.frame(bob), expect)
        msg = h.event(chat.Message)
        self.assertEqual((msg.client, msg.nick, msg.peer), (a_id, "alice", alice.addr))
        self.assertIsInstance(msg.payload, str)
        self.assertEqual(msg.json(), expect)
        self.assertEqual(msg.recipients, 1)

        # Broadcast from a client: no echo to the sender.
        bob.send({"type": "all", "text": "hello all"})
        self.assertEqual(h.frame(alice), {"type": "all", "from": "bob", "text": "hello all"})
        msg2 = h.event(chat.Message)
        self.assertEqual((msg2.client, msg2.nick, msg2.recipients), (b_id, "bob", 1))
        self.assertEqual(msg2.json(), {"type": "all", "from": "bob", "text": "hello all"})
        # The earlier event is a copy: later traffic did not change it.
        self.assertEqual(msg.json(), expect)
        self.assertEqual(h.events, [])

        # The host sends a dict, a str and bytes.
        s.send(a_id, {"type": "note", "n": 1, "text": "\u00e9\u4e2d"})
        s.send(a_id, '{"type":"note","n":2}')
        s.send(a_id, b'{"type":"note","n":3}')
        self.assertEqual(h.frame(alice), {"type": "note", "n": 1, "text": "\u00e9\u4e2d"})
        self.assertEqual(h.frame(alice), {"type": "note", "n": 2})
        self.assertEqual(h.frame(alice), {"type": "note", "n": 3})
        self.assertEqual(s.broadcast({"type": "news", "text": "x"}), 2)
        self.assertEqual(h.frame(alice), {"type": "news", "text": "x"})
        self.assertEqual(h.frame(bob), {"type": "news", "text": "x"})

        # Kick: bob is told why and closed; alice sees him leave.
        s.kick(b_id, "bye now")
        frames = h.closed(bob)
        self.assertEqual(frames[-1]["type"], "error", frames)
        self.assertEqual(frames[-1]["code"], "kicked")
        self.assertEqual(frames[-1].get("message"), "bye now")
        self.assertEqual(
            h.frame(alice),
            {"type": "presence", "nick": "bob", "state": "offline", "reason": "kicked"},
        )
        gone = h.event(chat.Disconnected)
        self.assertEqual((gone.client, gone.nick, gone.reason, gone.peer), (b_id, "bob", "kicked", bob.addr))
        with self.assertRaises(chat.ChatError) as cm:
            s.send(b_id, {"type": "note"})
        self.assertEqual(cm.exception.code, chat.ERR_UNKNOWN_CLIENT)

        st = s.stats()
        self.assertIsInstance(st, chat.Stats)
        self.assertEqual(st.accepted, 2)
        self.assertEqual(st.clients, 1)
        self.assertEqual(st.registered, 1)
        self.assertEqual(st.refused, 0)
        self.assertEqual(st.disconnects_kicked, 1)
        self.assertEqual(st.disconnects["kicked"], 1)
        self.assertEqual(sum(st.disconnects.values()), 1)
        self.assertGreaterEqual(st.frames_in, 4)
        self.assertGreaterEqual(st.frames_out, 10)
        self.assertGreater(st.bytes_in, 0)
        self.assertGreater(st.bytes_out, 0)
        self.assertGreater(st.peak_queued_bytes, 0)

        # Quit: the reason is quit, the nick is still in the event.
        alice.send({"type": "quit"})
        h.closed(alice)
        left = h.event(chat.Disconnected)
        self.assertEqual((left.client, left.nick, left.reason), (a_id, "alice", "quit"))
        self.assertEqual(s.stats().disconnects_quit, 1)
        self.assertEqual(s.stats().clients, 0)

    def test_an_unregistered_client_disconnects_without_a_nick(self):
        h = self.start()
        c = h.connect()
        conn = h.event(chat.Connected)
        c.sock.close()
        h.clients.remove(c)
        gone = h.event(chat.Disconnected, client=conn.client)
        self.assertIsNone(gone.nick)
        self.assertEqual(gone.reason, "disconnect")

    def test_shutdown_tells_everyone_and_drains(self):
        h = self.start()
        alice = h.hello("alice")
        bob = h.hello("bob")
        events = h.server.shutdown(deadline=2.0)
        reasons = sorted((e.nick, e.reason) for e in events if isinstance(e, chat.Disconnected))
        self.assertEqual(reasons, [("alice", "shutdown"), ("bob", "shutdown")])
        for c in (alice, bob):
            frames = h.closed(c)
            self.assertIn({"type": "error", "code": "shutdown"}, frames)
        self.assertEqual(h.server.stats().clients, 0)
        self.assertEqual(h.server.stats().disconnects_shutdown, 2)


class SelectorsTest(ChatTestCase):
    def test_fds_timeout_and_pump_drive_the_server(self):
        h = self.start()
        s = h.server
        fds = s.fds()
        self.assertGreaterEqual(len(fds), 1)
        for fd, mask in fds:
            self.assertIsInstance(fd, int)
            self.assertGreaterEqual(fd, 0)
            self.assertIn(mask, (selectors.EVENT_READ, selectors.EVENT_WRITE, selectors.EVENT_READ | selectors.EVENT_WRITE))
        t = s.timeout()
        self.assertTrue(t is None or t >= 0)
        self.assertEqual(s.pump(), [])
        # Harness.step is a selectors loop over fds()/timeout() and pump().
        alice = h.hello("alice")
        self.assertEqual(h.event(chat.Registered).nick, "alice")
        alice.send({"type": "ping", "id": 7})
        self.assertEqual(h.frame(alice), {"type": "pong", "id": 7})

    def test_wakeup_from_another_thread_ends_a_blocked_poll(self):
        s = chat.Server()
        self.addCleanup(s.close)
        s.pump()
        waker = threading.Thread(target=s.wakeup)
        started = time.monotonic()
        waker.start()
        self.assertEqual(s.poll(DEADLINE), [])
        waker.join()
        self.assertLess(time.monotonic() - started, DEADLINE, "poll was not woken")

    def test_close_from_another_thread_ends_a_blocked_poll(self):
        s = chat.Server()
        closer = threading.Thread(target=s.close)
        started = time.monotonic()
        closer.start()
        try:
            s.poll(DEADLINE)
        except chat.ChatError:
            pass  # the close won the race
        closer.join()
        self.assertLess(time.monotonic() - started, DEADLINE, "poll was not woken")
        self.assertTrue(s.closed)
        with self.assertRaises(chat.ChatError):
            s.poll(0)

    def test_use_from_two_threads_at_once_is_refused(self):
        s = chat.Server()
        self.addCleanup(s.close)
        held, release = threading.Event(), threading.Event()

        def hold():
            # Stands for another thread in the middle of a call.
            with s._lock:
                held.set()
                release.wait(DEADLINE)

        t = threading.Thread(target=hold)
        t.start()
        self.assertTrue(held.wait(DEADLINE))
        try:
            with self.assertRaises(RuntimeError):
                s.poll(0)
            with self.assertRaises(RuntimeError):
                s.broadcast({"type": "x"})
            s.wakeup()  # still allowed
        finally:
            release.set()
            t.join()
        s.poll(0)


class MisuseTest(ChatTestCase):
    def test_every_call_after_close_raises(self):
        s = chat.Server()
        s.close()
        s.close()
        self.assertTrue(s.closed)
        calls = [
            lambda: s.port,
            lambda: s.poll(0),
            s.pump,
            s.fds,
            s.timeout,
            s.wakeup,
            lambda: s.send(1, {"type": "x"}),
            lambda: s.broadcast({"type": "x"}),
            lambda: s.kick(1),
            s.shutdown,
            s.stats,
            s.__enter__,
            lambda: s.set_user_data(1, 2),
            lambda: s.room_send("#r", {"type": "x"}),
            lambda: s.room_members("#r"),
            lambda: s.room_remove(1, "#r"),
            lambda: s.approve(1),
            lambda: s.reject(1),
            lambda: s.release(1),
            lambda: s.drop(1),
        ]
        for call in calls:
            with self.assertRaises(chat.ChatError) as cm:
                call()
            self.assertEqual(cm.exception.code, chat.ERR_NULL)
        self.assertIn("closed", repr(s))

    def test_context_manager_closes(self):
        with chat.Server() as s:
            self.assertGreater(s.port, 0)
        self.assertTrue(s.closed)
        with self.assertRaises(chat.ChatError):
            s.stats()

    def test_wrong_argument_types(self):
        for bad in (None, 7878, b"127.0.0.1:0"):
            with self.assertRaises(TypeError):
                chat.Server(bad)
        with self.assertRaises(ValueError):
            chat.Server("127.0.0.1:0\0junk")
        with self.assertRaises(TypeError):
            chat.Server(max_clients="10")
        with self.assertRaises(TypeError):
            chat.Server(max_events=True)
        with self.assertRaises(TypeError):
            chat.Server(idle_timeout_ms=1.5)
        with self.assertRaises(ValueError):
            chat.Server(max_clients=-1)
        with self.assertRaises(ValueError):
            chat.Server(max_frame_bytes=2**32)
        with self.assertRaises(TypeError):
            chat.Server("127.0.0.1:0", 10)  # limits are keyword-only

        h = self.start()
        s = h.server
        alice = h.hello("alice")
        a_id = h.event(chat.Registered).client
        for client in (None, "1", 1.0, True):
            with self.assertRaises(TypeError):
                s.send(client, {"type": "x"})
            with self.assertRaises(TypeError):
                s.kick(client)
        with self.assertRaises(ValueError):
            s.send(-1, {"type": "x"})
        with self.assertRaises(ValueError):
            s.kick(2**64)
        for msg in (None, 5, ["type", "x"], {"type": {1, 2}}):
            with self.assertRaises(TypeError):
                s.send(a_id, msg)
            with self.assertRaises(TypeError):
                s.broadcast(msg)
        with self.assertRaises(TypeError):
            s.kick(a_id, 5)
        with self.assertRaises(ValueError):
            s.kick(a_id, "a\0b")
        for timeout in ("1", [1]):
            with self.assertRaises(TypeError):
                s.poll(timeout)
        for timeout in (-1, float("nan")):
            with self.assertRaises(ValueError):
                s.poll(timeout)
        # None of that reached the client.
        s.send(a_id, {"type": "still", "ok": True})
        self.assertEqual(h.frame(alice), {"type": "still", "ok": True})

    def test_library_errors_carry_code_and_message(self):
        h = self.start(max_frame_bytes=1024)
        s = h.server
        h.hello("alice")
        a_id = h.event(chat.Registered).client

        def code_of(call):
            with self.assertRaises(chat.ChatError) as cm:
                call()
            e = cm.exception
            self.assertIsInstance(e.message, str)
            self.assertTrue(e.message)
            self.assertIn(e.name, str(e))
            return e.code

        big = {"type": "note", "text": "x" * 2000}
        self.assertEqual(code_of(lambda: s.send(a_id, big)), chat.ERR_TOO_LARGE)
        self.assertEqual(code_of(lambda: s.broadcast(big)), chat.ERR_TOO_LARGE)
        for not_object in ("[1,2]", "42", '"text"', "not json", "", '{"type":"x"} {"type":"y"}'):
            self.assertEqual(code_of(lambda: s.send(a_id, not_object)), chat.ERR_NOT_JSON_OBJECT, not_object)
            self.assertEqual(code_of(lambda: s.broadcast(not_object)), chat.ERR_NOT_JSON_OBJECT, not_object)
        self.assertIn(code_of(lambda: s.send(a_id, b"\xff\xfe")), (chat.ERR_UTF8, chat.ERR_NOT_JSON_OBJECT))
        for unknown in (0, a_id + 1000, 2**64 - 1):
            self.assertEqual(code_of(lambda: s.send(unknown, {"type": "x"})), chat.ERR_UNKNOWN_CLIENT)
            self.assertEqual(code_of(lambda: s.kick(unknown)), chat.ERR_UNKNOWN_CLIENT)
        self.assertEqual(s.stats().clients, 1)

    def test_bad_address_bind_conflict_and_bad_config(self):
        with self.assertRaises(chat.ChatError) as cm:
            chat.Server("not an address")
        self.assertEqual(cm.exception.code, chat.ERR_ADDR)
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with self.assertRaises(chat.ChatError) as cm:
            chat.Server("127.0.0.1:%d" % taken.getsockname()[1])
        self.assertEqual(cm.exception.code, chat.ERR_BIND)
        with self.assertRaises(chat.ChatError) as cm:
            chat.Server(max_frame_bytes=1)
        self.assertEqual(cm.exception.code, chat.ERR_CONFIG)
        with self.assertRaises(chat.ChatError) as cm:
            chat.Server(max_clients=0)
        self.assertEqual(cm.exception.code, chat.ERR_CONFIG)

    def test_version_and_strerror(self):
        self.assertEqual(chat.version(), "0.1.0")
        self.assertTrue(chat.strerror(chat.ERR_TOO_LARGE))
        self.assertEqual(chat.strerror(-999), "unknown error code")
        self.assertTrue(os.path.isfile(chat.library_path()))


@unittest.skipUnless(os.path.isdir("/proc/self/fd"), "needs /proc/self/fd")
class LeakTest(unittest.TestCase):
    def test_no_descriptor_leaks_over_1000_servers(self):
        def open_fds():
            return len(os.listdir("/proc/self/fd"))

        # Load the library and warm up anything created once.
        chat.Server().close()
        gc.collect()
        before = open_fds()
        with chat.Server():
            # The count sees a live server's listener and wake pipe.
            self.assertGreater(open_fds(), before)
        self.assertEqual(open_fds(), before)
        for i in range(1000):
            if i % 3 == 0:
                with chat.Server() as s:
                    s.poll(0)
            elif i % 3 == 1:
                s = chat.Server()
                s.fds()
                s.close()
            else:
                # Dropped without close(): __del__ frees it.
                chat.Server().stats()
        for _ in range(10):
            with self.assertRaises(chat.ChatError):
                chat.Server("not an address")
        gc.collect()
        self.assertEqual(open_fds(), before)


if __name__ == "__main__":
    unittest.main()
