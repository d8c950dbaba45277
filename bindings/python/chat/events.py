"""What Server.poll returns: one immutable dataclass per event kind, and the
counters of Server.stats. Every field is a plain Python value copied out of
the library, so nothing here refers to library memory."""

import json as _json
from dataclasses import dataclass
from typing import Optional

from . import _lib


@dataclass(frozen=True)
class Event:
    """Fields every event has."""

    client: int
    """The client's id: never 0, never reused within one server."""
    peer: str
    """Its address, "IP:port"."""
    nick: Optional[str]
    """Its nick once registered (still set in its Disconnected event; in
    Approval, the nick it asked for), else None."""
    user_data: int
    """What the host attached with Server.set_user_data when the event was
    made (0 until then)."""


@dataclass(frozen=True)
class Connected(Event):
    """A connection was accepted."""


@dataclass(frozen=True)
class Registered(Event):
    """The client completed hello; nick is set."""


@dataclass(frozen=True)
class Message(Event):
    """The client's msg, all or room was routed to other clients (with
    intercept_messages: when the host released it)."""

    payload: str
    """The JSON object as its recipients got it (with "from")."""
    recipients: int
    """How many output queues took it."""

    def json(self):
        """The payload decoded."""
        return _json.loads(self.payload)


@dataclass(frozen=True)
class Disconnected(Event):
    """The client is gone; its id is no longer valid."""

    reason: str
    """quit, disconnect, slow_consumer, timeout, protocol_error, kicked or shutdown."""


@dataclass(frozen=True)
class Joined(Event):
    """The client joined a room."""

    room: str


@dataclass(frozen=True)
class Parted(Event):
    """The client left a room (by part, by Server.room_remove, or before its
    Disconnected)."""

    room: str


@dataclass(frozen=True)
class Approval(Event):
    """The client sent a valid hello and waits for the host's approval
    (only with approve_registrations); nick is the one it asked for."""

    token: Optional[str]
    """The hello's "token", or None."""


@dataclass(frozen=True)
class Intercepted(Event):
    """A msg, all or room frame waits for the host (only with
    intercept_messages): Server.release(ticket) routes it, Server.drop(ticket)
    discards it."""

    ticket: int
    """What to pass to release or drop."""
    payload: str
    """The client's JSON as it sent it."""

    def json(self):
        """The payload decoded."""
        return _json.loads(self.payload)


@dataclass(frozen=True)
class Renamed(Event):
    """The client renamed itself with a nick command; nick is the new one."""

    old_nick: str
    """The nick before."""


@dataclass(frozen=True)
class Parked(Event):
    """The connection of a resumable session ended (disconnect, timeout or
    slow_consumer) and the session waits for a resume, under the same id:
    it keeps its nick and rooms, and send, notice, kick... still work on
    the id. Resumed (on a new id) or Disconnected (on this one) follows."""

    reason: str
    """Why the connection ended."""


@dataclass(frozen=True)
class Resumed(Event):
    """A session resumed on this connection: the client known until now as
    ``previous`` is this id from now on (nick, rooms, user data and waiting
    frames moved here); ``previous`` is never valid again and gets no
    Disconnected."""

    previous: int
    """The session's id before."""


def from_raw(raw):
    """The dataclass for a dict from _lib.next_event."""
    kind = raw["kind"]
    base = (raw["client"], raw["peer"], raw["nick"], raw["user_data"])
    if kind == _lib.EVENT_CONNECTED:
        return Connected(*base)
    if kind == _lib.EVENT_REGISTERED:
        return Registered(*base)
    if kind == _lib.EVENT_MESSAGE:
        return Message(*base, raw["payload"], raw["recipients"])
    if kind == _lib.EVENT_DISCONNECTED:
        return Disconnected(*base, raw["reason"])
    if kind == _lib.EVENT_JOINED:
        return Joined(*base, raw["room"])
    if kind == _lib.EVENT_PARTED:
        return Parted(*base, raw["room"])
    if kind == _lib.EVENT_APPROVAL:
        return Approval(*base, raw["token"])
    if kind == _lib.EVENT_INTERCEPTED:
        return Intercepted(*base, raw["ticket"], raw["payload"])
    if kind == _lib.EVENT_RENAMED:
        return Renamed(*base, raw["old_nick"])
    if kind == _lib.EVENT_PARKED:
        return Parked(*base, raw["reason"])
    if kind == _lib.EVENT_RESUMED:
        return Resumed(*base, raw["previous"])
    # A newer library may add kinds; an old binding must not crash on them.
    return Event(*base)


REASONS = ("quit", "disconnect", "slow_consumer", "timeout", "protocol_error", "kicked", "shutdown")


@dataclass(frozen=True)
class Stats:
    """A snapshot of the server's counters (ChatStats)."""

    clients: int
    registered: int
    accepted: int
    refused: int
    frames_in: int
    frames_out: int
    bytes_in: int
    bytes_out: int
    queued_bytes: int
    peak_queued_bytes: int
    disconnects_quit: int
    disconnects_disconnect: int
    disconnects_slow_consumer: int
    disconnects_timeout: int
    disconnects_protocol_error: int
    disconnects_kicked: int
    disconnects_shutdown: int
    failed_handshakes: int
    """Connections closed before they were clients (TLS or WebSocket handshakes)."""
    parked: int
    """Resumable sessions parked now."""
    resumed: int
    """Successful resumes so far."""
    resume_failed: int
    """Resumes answered resume_failed so far."""
    retained_bytes: int
    """Bytes sessions hold for a resume now (by reference)."""
    draining: int
    """Closed connections still drained of what their peer sends (they count toward max_clients)."""
    drained_bytes: int
    """Bytes read and discarded from draining connections so far."""
    cluster_state: int
    """0: not a node of a cluster; 1: the cluster is down (Redis unreachable); 2: up."""
    cluster_nodes: int
    """Nodes of the cluster registered now, this one included."""
    cluster_users: int
    """Nicks in the whole cluster now."""
    cluster_relayed_out: int
    """Frames published for users of other nodes."""
    cluster_relayed_in: int
    """Frames from other nodes handed to local clients."""
    cluster_relay_failed: int
    """Relays refused, lost or expired while Redis was away, or dropped on arrival."""
    cluster_reconnects: int
    """Reconnects of the two Redis connections."""

    @property
    def disconnects(self):
        """Disconnects by reason word, e.g. {"quit": 1, ...}."""
        return {r: getattr(self, "disconnects_" + r) for r in REASONS}
