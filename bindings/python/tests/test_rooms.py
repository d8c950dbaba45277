"""Rooms through chat.Server over real sockets: Joined/Parted events, what
the host does with a room (room_send, room_members, room_remove), the room
limits, and the error codes of those calls."""

import unittest

from helpers import ChatTestCase, chat


class RoomsTest(ChatTestCase):
    def join(self, h, c, room):
        c.send({"type": "join", "room": room})

        def answer():
            return next((f for f in c.frames if f["type"] in ("joined", "error")), None)

        reply = h.wait(answer, "joined or an error")
        c.frames.remove(reply)
        return reply

    def test_join_and_part_are_events_with_the_room(self):
        h = self.start()
        alice = h.hello("alice")
        bob = h.hello("bob")
        h.frame(alice)  # bob online
        h.event(chat.Registered, nick="bob")
        h.events.clear()
        for c in (alice, bob):
            c.send({"type": "join", "room": "#rust"})
            self.assertEqual(h.frame(c)["type"], "joined")
        a = h.event(chat.Joined, nick="alice")
        b = h.event(chat.Joined, nick="bob")
        self.assertEqual((a.room, b.room), ("#rust", "#rust"))
        self.assertEqual(a.peer, alice.addr)
        bob.send({"type": "part", "room": "#rust"})
        parted = h.event(chat.Parted)
        self.assertEqual((parted.client, parted.nick, parted.room), (b.client, "bob", "#rust"))
        # Leaving the server parts its rooms first, then disconnects.
        self.assertEqual(h.events, [])
        alice.send({"type": "quit"})
        h.closed(alice)
        h.wait(lambda: any(isinstance(e, chat.Disconnected) for e in h.events), "alice's Disconnected")
        self.assertEqual(
            [(type(e), e.client) for e in h.events],
            [(chat.Parted, a.client), (chat.Disconnected, a.client)],
        )
        self.assertEqual(h.events[0].room, "#rust")
        self.assertEqual(h.events[1].reason, "quit")

    def test_the_host_sends_to_a_room_lists_and_removes_members(self):
        h = self.start()
        s = h.server
        (alice, a), (bob, b), (carol, _) = h.users("alice", "bob", "carol")
        # The room keeps the spelling of whoever made it.
        self.assertEqual(self.join(h, alice, "#Rust")["room"], "#Rust")
        self.assertEqual(self.join(h, bob, "#rust")["members"], ["alice", "bob"])
        self.assertEqual(
            h.barrier(alice, 0), [{"type": "presence", "nick": "bob", "room": "#Rust", "state": "joined"}]
        )
        self.assertEqual(s.room_members("#Rust"), [a, b])
        self.assertEqual(s.room_members("#RUST"), [a, b])

        # A dict, a str and bytes, each to both members and not to carol.
        self.assertEqual(s.room_send("#rust", {"type": "news", "n": 1, "text": "\u00e9"}), 2)
        self.assertEqual(s.room_send("#RUST", '{"type":"news","n":2}'), 2)
        self.assertEqual(s.room_send("#rust", b'{"type":"news","n":3}'), 2)
        want = [
            {"type": "news", "n": 1, "text": "\u00e9"},
            {"type": "news", "n": 2},
            {"type": "news", "n": 3},
        ]
        self.assertEqual(h.barrier(alice, 1), want)
        self.assertEqual(h.barrier(bob, 1), want)
        self.assertEqual(h.barrier(carol, 1), [])

        h.events.clear()
        s.room_remove(b, "#rust")
        self.assertEqual(h.frame(bob), {"type": "parted", "room": "#Rust"})
        parted = {"type": "presence", "nick": "bob", "room": "#Rust", "state": "parted"}
        self.assertEqual(h.frame(alice), parted)
        parted = h.event(chat.Parted)
        self.assertEqual((parted.client, parted.nick, parted.room), (b, "bob", "#Rust"))
        self.assertEqual(s.room_members("#rust"), [a])
        self.assertEqual(s.room_send("#rust", {"type": "news", "n": 4}), 1)
        self.assertEqual(h.barrier(bob, 2), [])
        self.assertEqual(h.frame(alice), {"type": "news", "n": 4})

    def test_room_members_past_the_first_guess_of_size(self):
        h = self.start()
        ids = []
        for i in range(20):
            c = h.hello("u%d" % i)
            ids.append(h.event(chat.Registered, nick="u%d" % i).client)
            self.join(h, c, "#big")
        self.assertEqual(h.server.room_members("#big"), ids)

    def test_errors_of_the_room_calls(self):
        h = self.start(max_frame_bytes=1024)
        s = h.server
        (alice, a), (bob, b) = h.users("alice", "bob")
        self.join(h, alice, "#rust")

        for call in (
            lambda: s.room_send("#nope", {"type": "x"}),
            lambda: s.room_members("#nope"),
            lambda: s.room_remove(a, "#nope"),
        ):
            self.assertChatError(chat.ERR_UNKNOWN_ROOM, call)
        self.assertChatError(chat.ERR_NOT_IN_ROOM, s.room_remove, b, "#rust")
        self.assertChatError(chat.ERR_UNKNOWN_CLIENT, s.room_remove, b + 1000, "#rust")
        self.assertChatError(chat.ERR_TOO_LARGE, s.room_send, "#rust", {"type": "x", "text": "x" * 2000})
        for not_object in ("[1]", "", "nope", '{"type":"x"} {}', b"\xff"):
            self.assertChatError(chat.ERR_NOT_JSON_OBJECT, s.room_send, "#rust", not_object)

        # The last member leaving removes the room.
        alice.send({"type": "part", "room": "#rust"})
        self.assertEqual(h.frame(alice), {"type": "parted", "room": "#rust"})
        self.assertChatError(chat.ERR_UNKNOWN_ROOM, s.room_members, "#rust")

        for bad in (None, 5, b"#rust"):
            with self.assertRaises(TypeError):
                s.room_send(bad, {"type": "x"})
            with self.assertRaises(TypeError):
                s.room_members(bad)
            with self.assertRaises(TypeError):
                s.room_remove(a, bad)
        for bad in ("#a\0b", "#\ud800"):
            with self.assertRaises(ValueError):
                s.room_members(bad)
        with self.assertRaises(ValueError):
            s.room_remove(-1, "#rust")
        # None of that reached anyone.
        self.assertEqual(h.barrier(alice, 0), [])
        self.assertEqual(h.barrier(bob, 0), [])

    def test_room_limits_from_the_keyword_arguments(self):
        h = self.start(max_rooms_per_client=1, max_members_per_room=2, max_rooms=2)
        (alice, _), (bob, _), (carol, _) = h.users("alice", "bob", "carol")
        self.assertEqual(self.join(h, alice, "#a")["type"], "joined")
        refused = self.join(h, alice, "#b")
        self.assertEqual((refused["code"], refused["room"]), ("too_many_rooms", "#b"))
        self.assertEqual(self.join(h, bob, "#a")["type"], "joined")
        refused = self.join(h, carol, "#a")
        self.assertEqual((refused["code"], refused["room"]), ("room_full", "#a"))
        self.assertEqual(self.join(h, carol, "#c")["type"], "joined")
        dave = h.hello("dave")
        refused = self.join(h, dave, "#d")
        self.assertEqual((refused["code"], refused["room"]), ("server_room_limit", "#d"))


if __name__ == "__main__":
    unittest.main()
